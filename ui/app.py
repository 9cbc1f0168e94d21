"""The Gradio chat app: a thin layer over `rag.Engine`, with no retrieval or prompting here."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from rag.answer_log import AnswerLog  # noqa: E402
from rag.config import TOP_K_MIN, Settings, check_top_k  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.errors import InvalidInput  # noqa: E402
from rag.feeds import FeedList  # noqa: E402
from rag.ingest import Ingestor  # noqa: E402
from rag.watch import Watcher  # noqa: E402
from ui.articles import ArticleList, articles_tab  # noqa: E402
from ui.feeds import feeds_tab  # noqa: E402
from ui.render import render_answer, render_draft, render_error, safe  # noqa: E402

log = logging.getLogger(__name__)

CSS = """
.answer-text sup.cite { color: #2251a8; font-weight: 600; }
.short-answer { font-size: 1.15em; font-weight: 600; margin-bottom: 6px; }
.support { color: #333; }
.refusal-reason { color: #8a5a00; font-size: 0.9em; }
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


@dataclass
class Verdict:
    """What a right/wrong click leads to: a note for the user, and the answer log entry a
    correction is awaited for."""

    note: str
    awaiting: int | None = None


UPLOAD_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".jsonl")
ECHO_CHARS = 300  # a rejected question is shown cut to this, never echoed whole
DEFAULT_WATCH_S = 600.0  # `rag serve --every`'s default, for an app built without a watcher
UI_TOP_K_MAX = 20  # the slider's end; the API may ask up to config.TOP_K_MAX


# Words ending in -s that are not a headline's verb.
_NOT_VERBS = frozenset(
    "is was has does news its this his hers ours yours theirs as us thus plus across "
    "series species less unless always perhaps whereas various famous previous serious "
    "numerous bus gas chaos status virus campus census crisis analysis basis thesis "
    "tennis physics politics economics olympics lens bonus focus".split()
)
_IRREGULAR = frozenset(
    "frozen taken given chosen stolen beaten broken driven written hidden shaken sworn shown "
    "seen known drawn thrown won held hit cut shut sold told found built paid sent left lost "
    "kept caught brought bought fought taught struck sunk spent".split()
)
_NUMBERS = frozenset("two three four five six seven eight nine ten dozens hundreds".split())
_SAYING = frozenset({"say", "warn", "claim", "tell", "admit", "insist", "deny"})
_OUTLET_SUFFIX = re.compile(r"\s+[-|–—]\s+[^-|–—]{2,40}$")  # "Headline - The Outlet"
_SMALL = frozenset("a an the and or nor but for to of in on at by with from as vs via".split())
# Where a headline's second clause starts: after a comma (inside a quote too), or a linking word.
_CLAUSE = re.compile(r"[,;]|\s+(?:despite|amid|as|while|but|and then)\s+", re.IGNORECASE)
MAX_HEADLINE_CHARS = 160
MAX_EXAMPLE_CHARS = 110


def _base_form(verb: str) -> str:
    """reopens -> reopen, carries -> carry, reaches -> reach, says -> say."""
    if verb.endswith("ies") and len(verb) > 4:
        return verb[:-3] + "y"
    if verb.endswith(("sses", "ches", "shes", "xes", "zes", "oes")):
        return verb[:-2]
    return verb[:-1]


def _title_case(words: list[str]) -> bool:
    """Title case ("Mayor Asks Council to Join ..."): every word but the short ones capitalised."""
    long = [w for w in words if any(c.isalpha() for c in w) and w.casefold() not in _SMALL]
    return len(long) >= 3 and all(w.lstrip("\"'‘“(")[:1].isupper() for w in long)


def _trimmed(rest: str) -> str:
    """What follows the verb, cut at a second clause (", signals ...", "despite ...") and with
    a quote opened in it closed again."""
    rest = _CLAUSE.split(rest, maxsplit=1)[0].rstrip(" ,;")
    for opening, closing in (("“", "”"), ("‘", "’")):
        if rest.count(opening) > rest.count(closing):
            rest += closing
    return rest


def headline_question(title: str) -> str | None:
    """A question a reader would ask about a headline: "Lindholm rail strike ends" ->
    "When did Lindholm rail strike end?"; "Ferry strike: day three" -> "What is the latest on
    the ferry strike?". None when no question reads well (a quote, "Mayor says ...")."""
    title = _OUTLET_SUFFIX.sub("", " ".join(title.split()))
    topic, colon, _ = title.partition(": ")
    if colon:
        return _topic_question(topic)
    if title.endswith(("...", "…")):  # cut short by the site: keep its first clause only
        title = title[: title.rfind(",")] if "," in title else ""
    title = title.rstrip(".!?:;, ")
    if not title or len(title) > MAX_HEADLINE_CHARS or "?" in title:
        return None
    words = title.split()
    if words[0] in ("A", "An", "The"):  # "When did a day of chaos ...", not "When did A day"
        words[0] = words[0].lower()
    title_case = _title_case(words)
    for i, word in enumerate(words[1:], start=1):
        bare = word.strip("\"'‘’“”,:;()")
        low = bare.casefold()
        # The verb of "Subject verbs rest": the first -s word after a subject that is not
        # itself cut by punctuation; lower case unless the headline is in title case.
        if bare != word or not low.endswith("s") or low.endswith("ss") or len(low) < 4:
            if any(c in word for c in ",:;"):
                break
            continue
        if low in _NOT_VERBS or (bare[0].isupper() and not title_case):
            continue
        # A noun, not a verb: "ferry fares frozen", "5 things to know".
        if i + 1 < len(words) and _participle(words[i + 1]) or _counted(words[i - 1]):
            continue
        verb = _base_form(low)
        if verb in _SAYING:  # what follows is a claim, not an event with a date
            return None
        subject, rest = " ".join(words[:i]), _trimmed(" ".join(words[i + 1 :]))
        return _fits(f"When did {subject} {' '.join(filter(None, [verb, rest]))}?")
    return _passive_question(words, title_case)


def _topic_question(topic: str) -> str | None:
    """A headline's topic before its colon: "Ferry strike: day 4" -> "What is the latest on
    the Ferry strike?", "Hurricane Vell: ..." -> "What is the latest on Hurricane Vell?"."""
    words = topic.split()
    if not 2 <= len(words) <= 6 or any(c.isdigit() for c in topic):
        return None
    if all(w[:1].islower() for w in words[1:]):  # a noun phrase: "the Tarnby rail strike"
        return _fits(f"What is the latest on the {topic}?")
    return _fits(f"What is the latest on {topic}?")  # a name: "Hurricane Vell"


def _counted(word: str) -> bool:
    low = word.casefold()
    return low.isdigit() or low in _NUMBERS


def _participle(word: str) -> bool:
    low = word.casefold()
    return word.isalpha() and (low in _IRREGULAR or (low.endswith("ed") and len(low) >= 5))


def _passive_question(words: list[str], title_case: bool) -> str | None:
    """A headline with a participle: "Orlen library funding approved" -> "When was Orlen
    library funding approved?"."""
    for i, word in enumerate(words[1:], start=1):
        if not _participle(word) or (word[0].isupper() and not title_case):
            continue
        subject, rest = " ".join(words[:i]), _trimmed(" ".join(words[i:]))
        last = words[i - 1].casefold()
        be = "were" if last.endswith("s") or last in _NUMBERS or last.isdigit() else "was"
        return _fits(f"When {be} {subject} {rest}?")
    return None


def _fits(question: str) -> str | None:
    return question if len(question) <= MAX_EXAMPLE_CHARS else None


def example_questions(engine: Engine, n: int = 3, articles: ArticleList | None = None) -> list[str]:
    """Questions made from the newest articles' headlines (planted-looking titles skipped)."""
    from rag.injection import planted_title

    out: list[str] = []
    for row in (articles or ArticleList(engine.store)).rows():
        if not row.title or planted_title(row.title):
            continue
        q = headline_question(row.title)
        if q and q not in out:
            out.append(q)
        if len(out) == n:
            break
    return out


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


class LoginThrottle:
    """Gradio's auth callable: constant-time password check, and a growing delay after repeated
    failures for a user, so guessing passwords costs time."""

    FREE_FAILURES = 3  # typos are not punished
    BASE_DELAY = 0.25  # seconds, doubled for each failure after the free ones
    MAX_DELAY = 8.0

    def __init__(self, user: str, password: str) -> None:
        import threading

        self._user, self._password = user, password
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, user: str, password: str) -> bool:
        import hmac

        with self._lock:
            failures = self._failures.get(user, 0)
        extra = failures - self.FREE_FAILURES
        if extra >= 0:
            time.sleep(min(self.BASE_DELAY * 2**extra, self.MAX_DELAY))
        ok = hmac.compare_digest(user.encode(), self._user.encode()) & hmac.compare_digest(
            password.encode(), self._password.encode()
        )
        with self._lock:
            if ok:
                self._failures.pop(user, None)
            else:
                self._failures[user] = failures + 1
                log.warning("failed login for user %r (%d in a row)", user[:40], failures + 1)
        return ok


def _echo(message: str) -> str:
    return message if len(message) <= ECHO_CHARS else message[:ECHO_CHARS] + "…"


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2}:\d{2})?$")


def date_picker(label: str, elem_id: str, info: str) -> gr.DateTime:
    """A day picked from a calendar (it can still be typed: picked_date() checks it)."""
    return gr.DateTime(
        None, include_time=False, type="string", label=label, info=info, elem_id=elem_id
    )


def picked_date(value: object, label: str) -> str | None:
    """A date control's value as YYYY-MM-DD, or None when empty; a clear error otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    # YYYY-MM-DD, or with a time of day (dropped: the filters work by day).
    if len(text) in (10, 19) and _DATE.match(text):
        try:
            return dt.date.fromisoformat(text[:10]).isoformat()
        except ValueError:  # 2024-02-30
            pass
    raise InvalidInput(
        f"{label}: {_echo(text)!r} is not a date; pick one with the calendar button, or "
        "write it like 2024-05-31"
    )


def check_range(since: object, until: object) -> None:
    start, end = picked_date(since, "From date"), picked_date(until, "To date")
    if start and end and start > end:
        raise InvalidInput(f"the From date ({start}) is after the To date ({end}); swap them")


ANSWERING = -1  # a draft's place in LogIds: there is no answer to judge yet
LogIds = dict[int, int | None]  # chat message index -> its answer's id in the answer log


def judge(answer_log: AnswerLog, log_ids: LogIds, index: object, liked: object) -> Verdict:
    """A thumb on an answer: up marks it right in the answer log; down marks it wrong and
    asks for the right answer. Returns what to tell the user and the entry a correction
    would go to (None when no correction is awaited)."""
    if isinstance(index, (list, tuple)):  # a message group: its last message
        index = index[-1]
    if liked not in (True, False):  # a thumb taken back: the last verdict stays
        return Verdict("")
    if not isinstance(index, int) or index not in log_ids:
        return Verdict("Only answers can be marked right or wrong.")
    entry_id = log_ids[index]
    if entry_id == ANSWERING:
        return Verdict("Wait for the answer to finish, then mark it.")
    if entry_id is None:
        return Verdict(
            "Nothing to record: this was an error, or the answer log is off (RAG_LOG=false) "
            "or cannot be written."
        )
    try:
        answer_log.feedback(entry_id, right=bool(liked))
    except Exception as e:  # e.g. the log was deleted since: say so, never a crash
        return Verdict(f"Could not record that: {e}")
    if liked:
        return Verdict(f"Answer #{entry_id} marked right. Thank you.")
    return Verdict(
        f"Answer #{entry_id} marked wrong. What is the right answer? Leave it empty if "
        "the articles do not say.",
        awaiting=entry_id,
    )


def correct(answer_log: AnswerLog, entry_id: int | None, text: str | None) -> Verdict:
    """The right answer for an answer marked wrong (empty: the articles do not hold one)."""
    if entry_id is None:
        return Verdict("Mark an answer wrong (thumbs down) first.")
    text = (text or "").strip()
    try:
        answer_log.feedback(entry_id, right=False, answer=text or None)
    except Exception as e:  # too long, or the entry is gone: keep the box open to fix it
        return Verdict(f"Could not record that: {e}", awaiting=entry_id)
    said = f": “{_echo(text)}”" if text else " (the articles do not hold the answer)"
    return Verdict(f"Answer #{entry_id} corrected{said}. Thank you.")


def build_app(engine: Engine, settings: Settings, watcher: Watcher | None = None) -> gr.Blocks:
    """The page. `watcher` runs the watched feeds (`rag serve` passes its running one); without
    it, feeds added in the panel run once when added."""
    ingestor = Ingestor(settings, engine.store, engine.embed)
    if watcher is None or watcher.feeds is None:
        watcher = Watcher(ingestor, [], DEFAULT_WATCH_S, feeds=FeedList(settings.data_dir))
    articles = ArticleList(engine.store)  # shared by the examples and the Articles view
    max_mb = settings.ui_max_upload_mb

    def respond(
        message: str,
        chat: list[dict],
        history: list[tuple[str, str]],
        source: str,
        since: str,
        until: str,
        top_k: float,
        as_of: str = "",
        log_ids: LogIds | None = None,
    ) -> Iterator[tuple[list[dict], list[tuple[str, str]], str, LogIds]]:
        message = (message or "").strip()
        log_ids = dict(log_ids or {})
        if not message:
            yield chat, history, "", log_ids
            return
        # "New conversation" clears the chat in the browser at once; the history follows the
        # chat shown, so a question asked right after it starts afresh and is never lost.
        history = list(history)[: sum(1 for m in chat if m.get("role") == "assistant")]
        # ...and so do the log ids: a thumb on the new answer must never judge an old one.
        log_ids = {i: v for i, v in log_ids.items() if i < len(chat)}
        log_ids[len(chat) + 1] = ANSWERING  # the draft: logged once it is answered
        chat = [
            *chat,
            {"role": "user", "content": safe(_echo(message))},
            {"role": "assistant", "content": render_draft("")},
        ]
        yield chat, history, "", log_ids
        draft = ""
        last_update = 0.0
        try:
            check_range(since, until)
            if source and source not in engine.store.sources():
                raise ValueError(f"no indexed article comes from the source {_echo(source)!r}")
            stream = engine.stream(
                message,
                history=history,
                source=source or None,
                since=picked_date(since, "From date"),
                until=picked_date(until, "To date"),
                top_k=check_top_k(top_k),
                as_of=picked_date(as_of, "As of"),
            )
            for token in stream:
                draft += token
                # Coalesce tokens: each update re-sends the chat, so at most ~8 a second.
                now = time.monotonic()
                if now - last_update >= 0.12:
                    last_update = now
                    chat[-1] = {"role": "assistant", "content": render_draft(draft)}
                    yield chat, history, "", log_ids
            answer = stream.answer
            chat[-1] = {
                "role": "assistant",
                "content": render_answer(answer, engine.passage_in_context),
            }
            history = [*history, (message, answer.text)]
            log_ids[len(chat) - 1] = answer.log_id
            yield chat, history, "", log_ids
        except Exception as e:  # shown in the chat, never a crash or a frozen page
            log.warning("question failed: %s", e)
            chat[-1] = {"role": "assistant", "content": render_error(str(e))}
            log_ids[len(chat) - 1] = None  # an error, not an answer
            yield chat, history, "", log_ids

    def ask_api(
        message: str,
        chat: list[dict],
        history: list[tuple[str, str]],
        source: str,
        since: str,
        until: str,
        top_k: float,
        as_of: str = "",
    ) -> Iterator[tuple[list[dict], list[tuple[str, str]], str]]:
        """The chat as an API (`/ask`): the page's answers, without its feedback state."""
        for step in respond(message, chat, history, source, since, until, top_k, as_of):
            yield step[:3]

    def on_like(ids: LogIds, data: gr.LikeData):
        v = judge(engine.answer_log, ids, data.index, data.liked)
        return v.note, v.awaiting, gr.update(visible=v.awaiting is not None)

    def on_correct(entry_id: int | None, text: str):
        v = correct(engine.answer_log, entry_id, text)
        shown = v.awaiting is not None
        return v.note, v.awaiting, gr.update(visible=shown), gr.update() if shown else ""

    def refresh():
        """What the page shows about the store, recomputed on each page load and upload."""
        sources = [""] + engine.store.sources()
        return (
            status_markdown(engine),
            gr.update(choices=sources),
            gr.update(samples=[[q] for q in example_questions(engine, articles=articles)]),
            gr.update(choices=sources),
        )

    def upload(files: list[str] | None, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        if not files:
            return gr.update(), *refresh()
        accepted = [f for f in files if Path(f).suffix.lower() in UPLOAD_SUFFIXES]
        lines = [
            f"⚠️ {Path(f).name}: not a supported type; accepted: {', '.join(UPLOAD_SUFFIXES)}"
            for f in files
            if f not in accepted
        ]
        if accepted:
            kept = keep_uploads(accepted, settings.data_dir / "uploads")
            report = ingestor.run(kept, progress=True)
            a = report.articles
            lines.insert(
                0, f"Ingested: {a.added} added, {a.updated} updated, {a.unchanged} unchanged."
            )
            lines += [f"⚠️ {Path(e.path).name}: {e.reason}" for e in report.errors]
        return "\n\n".join(safe(x) for x in lines), *refresh()

    with gr.Blocks(title="News Q&A", analytics_enabled=False) as app:
        history = gr.State([])
        log_ids = gr.State({})
        awaiting = gr.State(None)  # the answer log entry a "wrong" is waiting to correct
        with gr.Tabs():
            with gr.Tab("Ask", elem_id="ask-tab"), gr.Row():
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
                        feedback_options=("Like", "Dislike"),  # right / wrong, in the answer log
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
                    feedback_note = gr.Markdown(elem_id="feedback-note")
                    with gr.Row(visible=False, elem_id="correction") as correction:
                        correct_box = gr.Textbox(
                            placeholder="The right answer, if the articles hold one",
                            show_label=False,
                            scale=5,
                            max_length=1000,
                            elem_id="correct-answer",
                        )
                        save = gr.Button("Save correction", scale=1, elem_id="save-correction")
                    new = gr.Button("New conversation", size="sm", elem_id="new-chat")
                    examples = gr.Dataset(
                        components=[box],
                        samples=[[q] for q in example_questions(engine, articles=articles)],
                        label="Try asking",
                        elem_id="examples",
                    )
                with gr.Column(scale=1):
                    gr.Markdown("### Indexed")
                    status = gr.Markdown(elem_id="status")
                    gr.Markdown(
                        "### Filters\nAs of: answer as on that day; later articles are left "
                        "out, recent ones rank higher.",
                        elem_classes="filters-note",
                    )
                    source = gr.Dropdown(
                        [""],
                        value="",
                        label="Source",
                        # Choices change as articles arrive; respond() checks the value itself.
                        allow_custom_value=True,
                    )
                    since = date_picker("From date", "since", "Empty: any date.")
                    until = date_picker("To date", "until", "Empty: any date.")
                    as_of = date_picker(
                        "As of",
                        "as-of",
                        "Empty: today.",
                    )
                    top_k = gr.Slider(
                        TOP_K_MIN,
                        max(UI_TOP_K_MAX, settings.top_k),
                        value=settings.top_k,
                        step=1,
                        label="Passages (top-k)",
                    )
                    gr.Markdown("### Add articles")
                    # Types are checked in upload(), which says what is accepted; Gradio's own
                    # check would only show "Error".
                    files = gr.File(
                        file_count="multiple",
                        label=f"Markdown, text, HTML or JSONL (up to {max_mb:g} MB each)",
                        elem_id="upload",
                    )
                    upload_result = gr.Markdown(elem_id="upload-result")
            with gr.Tab("Articles", elem_id="articles-tab") as articles_view:
                article_source, (listed, filters, listing) = articles_tab(
                    articles, engine.store, date_picker, picked_date
                )
            with gr.Tab("Feeds", elem_id="feeds-tab") as feeds_view:
                feed_added, feed_removed, (feeds_shown, feeds_outputs) = feeds_tab(watcher)

        inputs = [box, chatbot, history, source, since, until, top_k, as_of, log_ids]
        outputs = [chatbot, history, box, log_ids]
        box.submit(respond, inputs, outputs, api_visibility="private")
        send.click(respond, inputs, outputs, api_visibility="private")
        # The API keeps its documented arguments and outputs (no feedback state).
        api_only = gr.Button(visible=False)
        api_only.click(ask_api, inputs[:-1], outputs[:-1], api_name="ask")
        # Cleared in the browser, with no round trip, so nothing asked next can overtake it.
        new.click(None, None, [chatbot, box], js="() => [[], '']", api_visibility="private")
        chatbot.like(
            on_like, log_ids, [feedback_note, awaiting, correction], api_visibility="private"
        )
        save.click(
            on_correct,
            [awaiting, correct_box],
            [feedback_note, awaiting, correction, correct_box],
            api_visibility="private",
        )
        examples.click(lambda sample: sample[0], examples, box, api_visibility="private")
        shown = [status, source, examples, article_source]
        app.load(refresh, None, shown, api_visibility="private")
        # Listed when first opened, so a large store does not slow the page's start.
        articles_view.select(listed, filters, listing, api_visibility="private")
        files.upload(upload, files, [upload_result, *shown], api_visibility="private")
        feeds_view.select(feeds_shown, None, feeds_outputs, api_visibility="private")
        # A feed's first run adds articles: the counts, sources and examples follow.
        feed_added.then(refresh, None, shown, api_visibility="private")
        feed_removed.then(refresh, None, shown, api_visibility="private")
    return app


def launch(
    settings: Settings,
    host: str,
    port: int,
    engine: Engine | None = None,
    watcher: Watcher | None = None,
) -> None:
    engine = engine or Engine.from_settings(settings)
    app = build_app(engine, settings, watcher)
    auth = None
    if settings.ui_auth:
        user, _, password = settings.ui_auth.partition(":")
        if not user or not password:
            raise ValueError("RAG_UI_AUTH must look like user:password")
        auth = LoginThrottle(user, password)
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
