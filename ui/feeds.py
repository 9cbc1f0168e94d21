"""The Feeds panel: add a feed or page URL to watch, see when each ran last and what it added,
stop watching one. The list lives in the data dir (rag/feeds.py); `rag serve`'s watcher runs it
on its schedule, and a feed added here runs at once so its articles can be asked about."""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.feeds import Feed, check_url
from rag.watch import Watcher
from rag.web import private_address
from ui.render import safe

HEADERS = ["Feed or page", "Watched since", "Last run", "Last result", "Added in all"]


def table(feeds: list[Feed]) -> list[list[str]]:
    return [
        [
            f.url,
            f.added,
            f.last_run or "not yet",
            f"failed: {f.last_error}" if f.last_error else f.last_result,
            str(f.total_added),
        ]
        for f in feeds
    ]


def add_feed(watcher: Watcher, text: str) -> str:
    """Watch `text` and run it once now. What to tell the user: what the first run added, or
    why the URL was not added (it is only kept when something could be read from it)."""
    assert watcher.feeds is not None
    try:
        url = check_url(text)
    except Exception as e:  # InvalidInput: says what is wrong and what to give instead
        return f"⚠️ Not added: {e}"
    # Whoever can open the page could otherwise have the server read, and show in the
    # Articles view, what only the server's own network can reach.
    inside = private_address(url)
    if inside and not watcher.ingestor.settings.web_allow_private:
        return (
            f"⚠️ Not added: {url} is at a private or local address ({inside}). Give a public "
            "site, or start the server with RAG_WEB_ALLOW_PRIVATE=true if you trust every "
            "site on its network."
        )
    try:
        feed = watcher.feeds.add(url)
    except Exception as e:
        return f"⚠️ Not added: {e}"
    watcher.run_feed(feed.url)
    ran = watcher.feeds.get(feed.url)
    if ran is None:  # removed by someone else meanwhile
        return f"{feed.url} was removed while it ran."
    if ran.last_error:
        watcher.feeds.remove(feed.url)
        return (
            f"⚠️ Not added: nothing could be read from {feed.url}: {ran.last_error}. "
            "Check the address (open it in a browser) and try again."
        )
    every = watcher.every / 60
    return (
        f"Watching {feed.url}: {ran.last_result}. It is checked again every {every:g} min "
        "while the server runs."
    )


def remove_feed(watcher: Watcher, url: str | None) -> str:
    assert watcher.feeds is not None
    if not url:
        return "⚠️ Pick a feed to stop watching."
    try:
        watcher.feeds.remove(url)
    except Exception as e:
        return f"⚠️ {e}"
    return f"Stopped watching {url}. What it added stays searchable."


def feeds_tab(watcher: Watcher) -> tuple[Any, Any, Any]:
    """The panel, built inside the caller's gr.Tab. Returns the Add and Stop buttons' events
    (for the page to refresh its counts after them) and the function that fills the panel."""
    assert watcher.feeds is not None
    feeds = watcher.feeds
    gr.Markdown(
        "Follow a news site: give its RSS or Atom feed, or a page, and new articles are "
        f"added every {watcher.every / 60:g} min while the server runs."
    )
    with gr.Row():
        url = gr.Textbox(
            label="Feed or page URL",
            placeholder="https://example.org/news/feed.xml",
            scale=5,
            max_length=2000,
            elem_id="feed-url",
        )
        add = gr.Button("Watch", variant="primary", scale=1, elem_id="feed-add")
    note = gr.Markdown(elem_id="feed-note")
    listing = gr.Dataframe(
        headers=HEADERS,
        datatype="str",
        interactive=False,
        wrap=True,
        elem_id="feed-table",
    )
    with gr.Row():
        chosen = gr.Dropdown([], label="Stop watching", scale=5, elem_id="feed-pick")
        drop = gr.Button("Stop watching", scale=1, elem_id="feed-remove")

    def shown():
        known = feeds.all()
        urls = [f.url for f in known]
        return table(known), gr.update(choices=urls, value=None)

    def on_add(text: str):
        said = add_feed(watcher, text)
        kept = not said.startswith("⚠️")
        return safe(said), *shown(), "" if kept else gr.update()

    def on_remove(picked: str | None):
        return safe(remove_feed(watcher, picked)), *shown()

    added = add.click(
        on_add, url, [note, listing, chosen, url], api_visibility="private", concurrency_limit=1
    )
    url.submit(on_add, url, [note, listing, chosen, url], api_visibility="private")
    removed = drop.click(on_remove, chosen, [note, listing, chosen], api_visibility="private")
    return added, removed, (shown, [listing, chosen])
