"""The Gradio chat app: a thin layer over `rag.Engine`, with no retrieval or prompting here."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.engine import Answer, Engine  # noqa: E402
from rag.ingest import Ingestor  # noqa: E402
from ui.render import render_answer, render_draft, render_error, safe  # noqa: E402

log = logging.getLogger(__name__)

CSS = """
.answer-text sup.cite { color: #2251a8; font-weight: 600; }
.refusal { border-left: 4px solid #c98a00; padding-left: 10px; }
.refusal-note { color: #8a5a00; font-weight: 600; margin-bottom: 4px; }
.sources { margin-top: 10px; font-size: 0.92em; }
.sources-label { color: #666; text-transform: uppercase; font-size: 0.8em; letter-spacing: .05em; }
details.source { border: 1px solid #ddd; border-radius: 6px; padding: 4px 8px; margin: 4px 0; }
details.source summary { cursor: pointer; }
.passage { margin-top: 6px; color: #444; line-height: 1.45; }
.passage mark { background: #fff2a8; color: #111; padding: 0 2px; }
.passage-meta { color: #777; font-size: 0.85em; }
.draft { color: #888; font-style: italic; }
.error { color: #b00020; font-weight: 600; }
"""

# System fonts only: the default theme would fetch fonts from the internet.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "monospace"],
)


def status_markdown(engine: Engine) -> str:
    st = engine.status()
    last = st["last_ingestion"] or {}
    when = last.get("finished", "never")
    return (
        f"**{st['articles']}** articles · **{st['chunks']}** chunks  \n"
        f"Last ingestion: {safe(when)}  \n"
        f"Model: {safe(st['embed_model'])} · store: {safe(st['collection'])}"
    )


def example_questions(engine: Engine, n: int = 3) -> list[str]:
    """Questions drawn from the indexed articles' titles."""
    titles = [a.title for a in engine.store.indexed().values() if a.title][:n]
    return [f"What does the article “{t.rstrip('.')}” report?" for t in titles]


def keep_uploads(files: list[str], folder: Path) -> list[Path]:
    """Copy uploads into the data directory under names that carry their content hash, so two
    uploads called notes.md never replace each other (or a corpus article) and the files
    outlive Gradio's temporary folder."""
    import hashlib
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    kept = []
    for f in map(Path, files):
        digest = hashlib.sha1(f.read_bytes()).hexdigest()[:10]
        target = folder / f"{f.stem}-{digest}{f.suffix.lower()}"
        if not target.exists():
            shutil.copyfile(f, target)
        kept.append(target)
    return kept


def build_app(engine: Engine, settings: Settings) -> gr.Blocks:
    ingestor = Ingestor(settings, engine.store, engine.embed)
    max_mb = settings.ui_max_upload_mb

    def respond(
        message: str,
        chat: list[dict],
        history: list[tuple[str, str]],
        source: str,
        since: str,
        until: str,
        top_k: float,
    ) -> Iterator[tuple[list[dict], list[tuple[str, str]], str]]:
        message = (message or "").strip()
        if not message:
            yield chat, history, ""
            return
        chat = [
            *chat,
            {"role": "user", "content": safe(message)},
            {"role": "assistant", "content": render_draft("")},
        ]
        yield chat, history, ""
        filters = {
            "source": source or None,
            "since": (since or "").strip() or None,
            "until": (until or "").strip() or None,
            "top_k": int(top_k),
        }
        draft = ""
        last_update = 0.0
        try:
            for event in engine.stream(message, history=history, **filters):
                if isinstance(event, Answer):
                    chat[-1] = {
                        "role": "assistant",
                        "content": render_answer(event, engine.passage_in_context),
                    }
                    history = [*history, (message, event.text)]
                    yield chat, history, ""
                else:
                    draft += event
                    # Coalesce tokens: each update re-sends the chat, so at most ~8 a second.
                    now = time.monotonic()
                    if now - last_update >= 0.12:
                        last_update = now
                        chat[-1] = {"role": "assistant", "content": render_draft(draft)}
                        yield chat, history, ""
        except Exception as e:  # shown in the chat, never a crash or a frozen page
            log.warning("question failed: %s", e)
            chat[-1] = {"role": "assistant", "content": render_error(str(e))}
            yield chat, history, ""

    def upload(files: list[str] | None, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        if not files:
            return gr.update(), status_markdown(engine), gr.update()
        report = ingestor.run(keep_uploads(files, settings.data_dir / "uploads"), progress=True)
        a = report.articles
        lines = [f"Ingested: {a.added} added, {a.updated} updated, {a.unchanged} unchanged."]
        lines += [f"⚠️ {Path(e.path).name}: {e.reason}" for e in report.errors]
        sources = [""] + engine.store.sources()
        return (
            "\n\n".join(safe(x) for x in lines),
            status_markdown(engine),
            gr.update(choices=sources),
        )

    with gr.Blocks(title="News Q&A", analytics_enabled=False) as app:
        history = gr.State([])
        with gr.Row():
            with gr.Column(scale=3):
                gr.Markdown(
                    "## Ask the articles\nEvery claim is cited to the passage it "
                    "comes from; open a source to read it in its article."
                )
                chatbot = gr.Chatbot(
                    label="Conversation",
                    height=560,
                    sanitize_html=True,
                    render_markdown=True,
                    latex_delimiters=[],
                    feedback_options=None,
                    elem_id="chat",
                )
                with gr.Row():
                    box = gr.Textbox(
                        placeholder="Ask a question about the articles…",
                        show_label=False,
                        scale=5,
                        elem_id="question",
                        max_length=1000,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                new = gr.Button("New conversation", size="sm", elem_id="new-chat")
                examples = example_questions(engine)
                if examples:
                    gr.Examples(examples=examples, inputs=box, label="Try asking")
            with gr.Column(scale=1):
                gr.Markdown("### Indexed")
                status = gr.Markdown(status_markdown(engine), elem_id="status")
                gr.Markdown("### Add articles")
                files = gr.File(
                    file_count="multiple",
                    file_types=[".md", ".markdown", ".txt", ".html", ".htm", ".jsonl"],
                    label=f"Markdown, text, HTML or JSONL (up to {max_mb:g} MB each)",
                    elem_id="upload",
                )
                upload_result = gr.Markdown(elem_id="upload-result")
                gr.Markdown("### Filters")
                source = gr.Dropdown(
                    [""] + engine.store.sources(),
                    value="",
                    label="Source",
                    allow_custom_value=False,
                )
                since = gr.Textbox(label="From date (YYYY-MM-DD)", placeholder="any")
                until = gr.Textbox(label="To date (YYYY-MM-DD)", placeholder="any")
                top_k = gr.Slider(1, 20, value=settings.top_k, step=1, label="Passages (top-k)")

        inputs = [box, chatbot, history, source, since, until, top_k]
        outputs = [chatbot, history, box]
        box.submit(respond, inputs, outputs, api_name="ask")
        send.click(respond, inputs, outputs, api_name=False)
        new.click(lambda: ([], [], ""), None, outputs, api_name=False)
        files.upload(upload, files, [upload_result, status, source], api_name=False)
    return app


def launch(settings: Settings, host: str, port: int, engine: Engine | None = None) -> None:
    engine = engine or Engine.from_settings(settings)
    app = build_app(engine, settings)
    auth = None
    if settings.ui_auth:
        user, _, password = settings.ui_auth.partition(":")
        if not user or not password:
            raise ValueError("RAG_UI_AUTH must look like user:password")
        auth = (user, password)
    app.queue(default_concurrency_limit=settings.ui_concurrency, max_size=settings.ui_queue_size)
    app.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        max_file_size=f"{settings.ui_max_upload_mb:g}mb",
        share=False,
        ssr_mode=False,
        show_error=False,
        theme=THEME,
        css=CSS,
        quiet=False,
    )
