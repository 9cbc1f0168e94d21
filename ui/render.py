"""Turn answers into chat HTML. Every piece of article or model text is escaped here, for HTML
and for Markdown alike, so nothing from an article or an answer can render as markup or run."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Callable

from rag.corroborate import DIFFER
from rag.engine import Answer
from rag.grounding import Citation

# Characters Markdown would read as syntax, written as entities so they show as themselves
# whether or not the renderer parses Markdown inside HTML blocks.
_MD_ENTITIES = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+!|~$<>"}
_MARKER = re.compile(r"\[(\d+)\]")
# Bidirectional overrides and isolates would reorder the text around them on screen ("RLO"
# makes a passage read backwards); they are dropped from anything shown.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def safe(text: str) -> str:
    """Text as inert HTML: escaped, Markdown-neutral, line breaks kept."""
    out = []
    for ch in text.replace("\r\n", "\n"):
        if ch in _MD_ENTITIES:
            out.append(_MD_ENTITIES[ch])
        elif ch in "&\"'":
            out.append(html.escape(ch))
        elif ch in "\n\r\f\v\u2028\u2029":  # any line break would end the HTML block
            out.append("<br>")
        elif ch in _BIDI_CONTROLS:
            continue
        else:
            out.append(ch)
    return "".join(out)


def _answer_text(text: str) -> str:
    """The answer with its [n] markers as visible superscript links to the sources below."""
    parts = _MARKER.split(text)
    out = []
    for i, part in enumerate(parts):
        out.append(f'<sup class="cite">&#91;{int(part)}&#93;</sup>' if i % 2 else safe(part))
    return "".join(out)


def _url(url: str) -> str | None:
    return url if re.match(r"https?://", url or "") else None


def render_answer(
    answer: Answer, in_context: Callable[[Citation], tuple[str, str, str]] | None = None
) -> str:
    """The chat message for an answer: text, then each source as an expandable passage."""
    cls = "answer refusal" if answer.refused else "answer"
    head = (
        '<div class="refusal-note">The articles do not hold the answer.</div>'
        + (
            f'<div class="refusal-reason">Why: {safe(answer.refusal_reason)}.</div>'
            if answer.refusal_reason
            else ""
        )
        if answer.refused
        else ""
    )
    short, _, support = answer.text.partition("\n\n")
    if answer.short_answer is not None and support:
        # The short answer first with its sources ("Ilka Brand [1][2] (2 sources)"), then
        # other sources' values when they differ, then the quoted support.
        lines = short.split("\n")
        differ = [x for x in lines[1:] if x.startswith(DIFFER)]
        rest = [x for x in lines[1:] if not x.startswith(DIFFER)]
        body = (
            f'<div class="short-answer">{_answer_text(chr(10).join([lines[0], *rest]))}</div>'
            + "".join(f'<div class="sources-differ">{_answer_text(x)}</div>' for x in differ)
            + f'<div class="support">{_answer_text(support)}</div>'
        )
    else:
        body = _answer_text(answer.text)
    label = "Closest passages" if answer.refused else "Sources"
    sources = []
    for c in answer.citations:
        before, passage, after = ("", c.text, "")
        if in_context is not None:
            # A passage deleted since the answer was given is shown alone.
            with contextlib.suppress(Exception):
                before, passage, after = in_context(c)
        meta = " · ".join(safe(x) for x in (c.source, c.date) if x)
        link = _url(c.url)
        link_html = (
            f' · <a href="{html.escape(link, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer">{safe(link)}</a>'
            if link
            else ""
        )
        sources.append(
            f'<details class="source" data-n="{c.n}"><summary>&#91;{c.n}&#93; '
            f"<b>{safe(c.title or c.doc_id)}</b>"
            f"{' · ' + meta if meta else ''}</summary>"
            f'<div class="passage-meta">{safe(c.doc_id)}, characters {c.start}–{c.end}'
            f"{link_html}</div>"
            f'<div class="passage">{safe(before)}<mark>{safe(passage)}</mark>{safe(after)}</div>'
            "</details>"
        )
    src = (
        f'<div class="sources"><div class="sources-label">{label}</div>{"".join(sources)}</div>'
        if sources
        else ""
    )
    return f'<div class="{cls}">{head}<div class="answer-text">{body}</div>{src}</div>'


def render_draft(text: str) -> str:
    return f'<div class="draft">{safe(text)}<span class="cursor">▍</span></div>'


def render_error(message: str) -> str:
    return f'<div class="error">⚠️ {safe(message)}</div>'
