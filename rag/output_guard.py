"""The last check before an answer is shown: it never relays a request to the reader to send
money, credentials or personal data, or to contact an address, phone number or URL to claim,
verify or be paid.

Such a request in an article is the usual form of a planted phishing message ("send your bank
details to refunds@... to be compensated"); a model that reads it repeats it as the answer,
with a citation that makes it look checked. Whatever the detector upstream missed, the answer
(its short answer, its text and the quotes it shows) is read here sentence by sentence:

- a request is a sentence that asks for sensitive data (bank details, a card number, a
  password, a PIN, a passport number ...) with a verb of giving (send, email, enter, reply
  with ...), or that names a contact point (URL, e-mail address, phone number) with a reason
  to use it that pays or verifies (claim, refund, compensation, verify, unlock ...), or asks
  for a transfer of money; a warning against it ("never send your PIN") is not a request;
- when the question does not ask how to contact someone, such sentences are taken out of the
  answer and the quotes, and a note says so;
- when it does, the request is not stated as the answer: it stays only in the quotes, where
  its source is named.
"""

from __future__ import annotations

import re

from rag.confusables import fold
from rag.text import sentence_spans, strip_markers

_F = re.IGNORECASE | re.VERBOSE

_SENSITIVE = re.compile(
    r"""\b(?:bank(?:ing)?\s*(?:details|account|data|information|info|username|login|password)
    |account\s+(?:number|details|credentials)|sort\s+code|routing\s+number|IBAN|BIC|SWIFT
    |PINs?|passwords?|passcodes?|one[-\s]time\s+(?:code|password)|OTP|credentials
    |(?:credit|debit|bank)\s+card|card\s+(?:number|details)|security\s+code|CVV|CVC
    |passport(?:\s+number)?|(?:national\s+)?ID\s+number|date\s+of\s+birth|social\s+security
    |tax\s+(?:number|ID)|login\s+details|seed\s+phrase|recovery\s+phrase|private\s+key
    |personal\s+(?:details|data|information)|full\s+name\s+and\s+address
    |coordonnées\s+bancaires|RIB|mot\s+de\s+passe|code\s+PIN|numéro\s+de\s+carte
    |Bankdaten|Bankverbindung|Kontodaten|Kontonummer|Passwort|Kennwort|Geheimzahl
    |datos\s+(?:bancarios|personales)|contraseña|número\s+de\s+(?:cuenta|tarjeta)
    |dati\s+bancari|dados\s+bancários|senha|bankgegevens|wachtwoord)\b""",
    _F,
)
_GIVE = re.compile(
    r"""\b(?:send|sending|sent|email|e-mail|mail|text|texting|sms|give|giving|provide|providing
    |submit|submitting|enter|entering|share|sharing|confirm|confirming|verify|verifying
    |update|updating|reply|replying|read\s+out|upload|fill\s+in|type|forward|disclose|hand\s+over
    |log\s*in|sign\s*in|transfer|wire|pay|deposit
    |envoy\w*|transmet\w*|communiqu\w*|indiqu\w*|saisi\w*|confirm\w*|vérifi\w*
    |send\w*|schick\w*|übermittel\w*|angeb\w*|eingeb\w*|bestätig\w*|überweis\w*
    |envi\w*|proporcion\w*|facilit\w*|introduc\w*|ingres\w*|transfier\w*|invia\w*|fornisc\w*
    |inserisc\w*)\b""",
    _F,
)
_CONTACT = re.compile(
    r"""(?:https?://\S+|\bwww\.\S+|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\+?\(?\d[\d\s().-]{6,}\d
    |\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|info|io|co|example|biz|xyz|online|site)\b)""",
    _F,
)
_PAYS = re.compile(
    r"""\b(?:claim\w*|compensat\w*|refund\w*|reimburs\w*|be\s+paid|get\s+paid|payment|payout\w*
    |prize|reward|winnings|grant|rebate|money\s+back|owed|unlock\w*|collect\w*|receive\w*
    |verify|verif\w*|validat\w*|reactivat\w*|restore|avoid\s+(?:suspension|closure)|suspended
    |indemnis\w*|rembours\w*|gagn\w*|entschädig\w*|erstatt\w*|Gewinn\w*|freischalt\w*
    |compens\w*|reembols\w*|premio|rimbors\w*|indenniz\w*)\b""",
    _F,
)
_MONEY_TRANSFER = re.compile(
    r"""\b(?:transfer|wire|send|pay|deposit|überweis\w*|vir\w*|transfier\w*)\b[^.!?]{0,60}
    (?:\d|€|\$|£|fee|money|euros?|dollars?|pounds?|bitcoin|crypto|gift\s+cards?)[^.!?]{0,60}
    \b(?:to|into|on)\s+(?:account|the\s+account|wallet|address|IBAN|[A-Z]{2}\d{2})""",
    _F,
)
# A warning against the request ("never send your PIN"), or a report of a scam ("police warned
# of fraudsters asking for bank details"): not a request to the reader.
_NEGATED = re.compile(
    r"""\b(?:never|do\s+not|don['’]t|not\s+to|should\s+not|must\s+not|shouldn['’]t|no\s+one
    |nobody|ne\s+\w+\s+jamais|jamais|niemals|nie|nunca|no\s+\w+\s+nunca|mai)\s+(?:[\w'’-]+\s+){0,4}?
    (?:give|send|share|provide|enter|disclose|reveal|reply|transfer|pay|type|click|call|confirm
    |verify
    |hand|communiqu\w*|donn\w*|envoy\w*|weiter\w*|geben|senden|dar|envi\w*|compart\w*)""",
    _F,
)
_SCAM_REPORT = re.compile(
    r"""\b(?:scam\w*|fraud\w*|fake|phishing|impersonat\w*|criminals?|swindl\w*|arnaque\w*
    |escroc\w*|Betrug\w*|Betrüger\w*|estafa\w*|truffa\w*)\b[^.!?]*\b(?:warn\w*|said|says
    |reported|told|according|alert\w*|urg\w*|advis\w*|met\s+en\s+garde|warnt|advirti\w*)\b
    |\b(?:warn\w*|said|reported|according|alert\w*)\b[^.!?]*\b(?:scam\w*|fraud\w*|fake|phishing
    |impersonat\w*|criminals?)\b""",
    _F,
)


def _is_warning(s: str) -> bool:
    return bool(_NEGATED.search(s) or _SCAM_REPORT.search(s))


# Someone asked to do something: "your", "you can", an order opening the sentence.
_TO_READER = re.compile(
    r"""\b(?:you|your|yours|vous|votre|vos|Sie|Ihre?n?|usted|su|sus)\b
    |^\W*(?:please\s+)?[A-Za-z]+\s+(?:your|the|their)\b
    |\b(?:can|should|must|need\s+to|are\s+asked\s+to|are\s+invited\s+to)\s+(?:[\w'’-]+\s+)?
    (?:send|email|text|give|provide|submit|enter|share|confirm|verify|reply|forward|transfer)""",
    _F,
)
# What a reader is told to do with a contact point.
_ACT = re.compile(
    r"""\b(?:call|ring|dial|text|phone|contact|visit|go\s+to|click|tap|email|e-mail|write\s+to
    |send|reply|log\s*in|sign\s*in|register|apply|enter|submit|scan|appel\w*|visit\w*|envoy\w*
    |ruf\w*|besuch\w*|llam\w*|visite\w*|envi\w*|chiam\w*)\b""",
    _F,
)
# The question asks how to reach someone: then a contact point may be quoted, with its source.
_ASKS_CONTACT = re.compile(
    r"""\b(?:contact|reach|call|phone|ring|e-?mail|write\s+to|get\s+in\s+touch|hotline
    |helpline|phone\s+number|e-?mail\s+address|website|web\s+site|url|address\s+(?:of|for)
    |where\s+(?:can|do|should)\s+\w+\s+(?:send|apply|claim|report)
    |how\s+(?:can|do|should|to)\s+\w*\s*(?:claim|apply|report|reach|contact))""",
    _F,
)

REMOVED_NOTE = (
    "(Left out: a request in the articles to send money, credentials or personal data, or to "
    "contact an address to be paid or verified. Legitimate organisations do not ask for these "
    "this way.)"
)
QUOTED_NOTE = (
    "(The articles' contact details are only quoted below, with their source; they are not "
    "checked, and no one legitimate asks for passwords, PINs or bank details this way.)"
)


def relays_request(sentence: str) -> bool:
    """Does this sentence ask its reader for money, credentials or personal data, or to use
    an address, phone number or URL to claim, verify or be paid?"""
    s = " ".join(fold(strip_markers(sentence)).split())
    if _is_warning(s):
        return False
    contact = _CONTACT.search(s)
    if _SENSITIVE.search(s) and _GIVE.search(s) and (contact or _TO_READER.search(s)):
        return True
    if contact and _PAYS.search(s) and _ACT.search(s):
        return True
    return bool(_MONEY_TRANSFER.search(s))


def asks_how_to_contact(question: str) -> bool:
    return bool(_ASKS_CONTACT.search(fold(question)))


def request_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text` that relays a request."""
    return [(a, b) for a, b in sentence_spans(text) if relays_request(text[a:b])]
