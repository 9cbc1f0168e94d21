"""Clean article text: normalise Unicode and whitespace, keep paragraphs, drop web boilerplate."""

from __future__ import annotations

import re
import unicodedata

# Lines that are never article content, wherever they stand.
_JUNK_LINE = re.compile(
    r"""^(
        advertisement | advertisements | sponsored( content)? | skip\ to\ (main\ )?content
        | share\ this( article| story)?:? | share\ on\ (facebook|twitter|x|linkedin|whatsapp)
        | click\ to\ (share|email|print)\b.* | (tweet|print|email|share)
        | read\ more:? | continue\ reading | (photo|image)\ credit:?.{0,60}
        | like\ this:? | loading\.{3}
    )$""",
    re.IGNORECASE | re.VERBOSE,
)

# A line that starts the comment form, related-links block or newsletter footer of a web page:
# everything from there to the end is cut, when it stands in the article's last part.
_FOOTER_START = re.compile(
    r"""^(
        leave\ a\ (reply|comment)\b.* | (\d+\ )?comments?:?$ | post\ a\ comment\b.*
        | your\ email\ address\ will\ not\ be\ published\b.* | required\ fields\ are\ marked\b.*
        | (related|recommended)\ (posts|articles|stories|content):? | you\ (may|might)\ also\ like:?
        | (subscribe|sign\ up)\ (to|for)\ (our|the)\ newsletter\b.* | more\ from\ .{1,40}:$
        | about\ the\ author:?
    )""",
    re.IGNORECASE | re.VERBOSE,
)

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
# Bidirectional embeddings, overrides and isolates (LRE RLE PDF LRO RLO, LRI RLI FSI PDI) make
# a screen show characters in another order than they are stored: an article could show one
# thing and say another to the model. The marks LRM/RLM/ALM stay: they only nudge neutral
# characters in mixed Arabic or Hebrew text and cannot reverse a run.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_DROPPED = {**_ZERO_WIDTH, **dict.fromkeys(map(ord, BIDI_CONTROLS))}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")


def clean_text(text: str) -> str:
    """Return the article text as it is indexed and cited: every offset refers to this string."""
    text = unicodedata.normalize("NFKC", text).translate(_DROPPED)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    lines = _drop_footer(lines)
    lines = [line for line in lines if not _JUNK_LINE.match(line)]
    # Paragraphs are separated by one blank line; runs of blank lines collapse.
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def strip_bidi_controls(text: str) -> str:
    """`text` without the bidi controls that reorder it on screen (for questions, titles)."""
    return text.translate(_DROPPED_BIDI)


_DROPPED_BIDI = dict.fromkeys(map(ord, BIDI_CONTROLS))


def _drop_footer(lines: list[str]) -> list[str]:
    content = [i for i, line in enumerate(lines) if line]
    if len(content) < 4:
        return lines
    # Only the last third of the article may be cut, so a story that merely mentions
    # "comments" near its top is never truncated.
    first_allowed = content[len(content) * 2 // 3]
    for i in range(first_allowed, len(lines)):
        if lines[i] and _FOOTER_START.match(lines[i]):
            return lines[:i]
    return lines
