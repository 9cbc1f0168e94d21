"""What is indexed, as the UI lists it: one row per complete article, newest first, read from
the store's marker chunks (chunk 0 carries each article's title, source, date and URL)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ui.render import safe

PAGE = 1000  # marker chunks read per request to the store
SHOWN = 200  # rows the Articles table shows at once; a search narrows the rest


@dataclass(frozen=True)
class ArticleRow:
    doc_id: str
    title: str
    source: str
    date: str  # YYYY-MM-DD, or "" when the article has none
    url: str


def _row(meta: dict[str, Any]) -> ArticleRow:
    return ArticleRow(
        doc_id=str(meta.get("doc_id", "")),
        title=str(meta.get("title") or ""),
        source=str(meta.get("source") or ""),
        date=str(meta.get("date") or ""),
        url=str(meta.get("url") or ""),
    )


class ArticleList:
    """The store's articles, newest first (undated last), re-read only after the store changed:
    the Articles view filters on every keystroke, and a store may hold 100,000 articles."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._rows: list[ArticleRow] = []

    def rows(self) -> list[ArticleRow]:
        key = (self.store.refresh(), self.store.count())
        with self._lock:
            if key != self._key:
                self._rows, self._key = self._read(), key
            return self._rows

    def _read(self) -> list[ArticleRow]:
        coll, rows, offset = self.store.collection, [], 0
        while True:
            page = coll.get(
                where={"chunk_index": 0}, include=["metadatas"], limit=PAGE, offset=offset
            )
            if not page["ids"]:
                break
            rows += [_row(m) for m in page["metadatas"]]
            offset += len(page["ids"])
        # Newest first; undated ones last; then by title so the order is stable.
        rows.sort(key=lambda r: r.title.casefold())
        rows.sort(key=lambda r: r.date or "0000", reverse=True)
        return rows

    def find(
        self,
        title: str = "",
        source: str = "",
        since: str | None = None,
        until: str | None = None,
    ) -> list[ArticleRow]:
        """Rows whose title contains every word of `title` (any case), from `source`, dated
        within [since, until] (YYYY-MM-DD; an undated article is outside any range)."""
        words = title.casefold().split()
        out = []
        for r in self.rows():
            if source and r.source != source:
                continue
            if (since or until) and not r.date:
                continue
            if (since and r.date < since) or (until and r.date[:10] > until):
                continue
            if words and not all(w in r.title.casefold() for w in words):
                continue
            out.append(r)
        return out

    def get(self, doc_id: str) -> ArticleRow | None:
        return next((r for r in self.rows() if r.doc_id == doc_id), None)


HEADERS = ["Date", "Source", "Title", "ID"]


def table(rows: list[ArticleRow]) -> list[list[str]]:
    return [[r.date or "undated", r.source, r.title or "(untitled)", r.doc_id] for r in rows]


def counted(found: int, total: int) -> str:
    shown = min(found, SHOWN)
    if found > shown:
        return f"{found} of {total} articles; the newest {shown} are listed: search to narrow"
    return f"{found} of {total} articles" if found != total else f"{total} articles"


def articles_tab(articles: ArticleList, store: Any, picker: Any, picked: Any) -> Any:
    """The Articles view, built inside the caller's gr.Tab: what is indexed, newest first,
    searchable by title and filterable by source and dates; a row opens the article's cleaned
    text, shown as plain text (never as HTML). Returns the source dropdown, which the page
    refreshes with its own, and the event that fills the table."""
    with gr.Row():
        query = gr.Textbox(
            label="Search titles",
            placeholder="words in the title",
            scale=3,
            elem_id="article-search",
        )
        source = gr.Dropdown(
            [""],
            value="",
            label="Source",
            allow_custom_value=True,
            scale=2,
            elem_id="article-source",
        )
        since = picker("From date", "article-since", "Empty: any date.")
        until = picker("To date", "article-until", "Empty: any date.")
    count = gr.Markdown(elem_id="article-count")
    listing = gr.Dataframe(
        headers=HEADERS,
        datatype="str",
        interactive=False,
        wrap=True,
        max_height=420,
        column_widths=["12%", "18%", "50%", "20%"],
        elem_id="article-table",
    )
    head = gr.Markdown("Pick an article above to read it.", elem_id="article-head")
    text = gr.Textbox(
        label="Article text", lines=14, max_lines=40, interactive=False, elem_id="article-text"
    )

    def listed(title: str, src: str, start: str | None, end: str | None):
        try:
            found = articles.find(
                title or "", src or "", picked(start, "From date"), picked(end, "To date")
            )
        except Exception as e:  # a bad date: say what to do, keep the table as it is
            return gr.update(), safe(str(e))
        return table(found[:SHOWN]), safe(counted(len(found), len(articles.rows())))

    def opened(evt: gr.SelectData):
        doc_id = str((evt.row_value or [""] * len(HEADERS))[HEADERS.index("ID")])
        row = articles.get(doc_id)
        if row is None:
            return "That article is no longer indexed.", ""
        try:
            body = store.article_text(doc_id)
        except KeyError:
            return "That article is no longer indexed.", ""
        meta = " · ".join(filter(None, [row.source, row.date, row.url, f"id {row.doc_id}"]))
        return f"### {safe(row.title or '(untitled)')}\n{safe(meta)}", body

    filters = [query, source, since, until]
    for control in filters:
        control.change(listed, filters, [listing, count], api_visibility="private")
    listing.select(opened, None, [head, text], api_visibility="private")
    return source, (listed, filters, [listing, count])
