"""Every answer, kept in the data dir so it can be found again and corrected into a gold set.

    log = AnswerLog.from_settings(settings)
    entry_id = log.record(answer, filters=filters, settings=settings, store=store.name)
    log.feedback(entry_id, right=False, answer="Ilse Varga")
    log.export_gold(Path("mine.jsonl"))      # then: rag eval --gold mine.jsonl

The log is SQLite (`<data_dir>/answers.sqlite3`) in WAL mode: several processes (a server, a
CLI, a watcher) append at once, each write one short transaction that waits out another's
lock. Nothing leaves the machine. Logging never fails an answer: when the file cannot be
written (read-only or missing folder, full disk, a damaged file) `record` returns None and
says so once in the log, not once per answer. Reading and feedback are what the user asked
for, so they raise `InvalidInput` with what to do next instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import InvalidInput
from rag.metrics import normalize

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.engine import Answer

log = logging.getLogger(__name__)

LOG_FILE = "answers.sqlite3"
SCHEMA_VERSION = 1
# Long text is kept cut, never refused: a question is at most 1000 characters once cleaned,
# but callers may log what the user typed, and one huge entry must not bloat every read.
MAX_TEXT_CHARS = 10_000
MAX_PASSAGE_CHARS = 2_000  # per citation: the cited words, for `rag logs show`
WRITE_WAIT_SECONDS = 5.0  # an answer waits at most this long for another writer's lock
READ_WAIT_SECONDS = 30.0  # a user reading or correcting the log can wait longer
ELLIPSIS = "…"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    question TEXT NOT NULL,
    standalone_question TEXT NOT NULL DEFAULT '',
    as_of TEXT NOT NULL DEFAULT '',
    filters TEXT NOT NULL DEFAULT '{}',
    short_answer TEXT,
    short_answer_at TEXT,
    answer TEXT NOT NULL,
    refused INTEGER NOT NULL,
    refusal_reason TEXT NOT NULL DEFAULT '',
    citations TEXT NOT NULL DEFAULT '[]',
    retrieved TEXT NOT NULL DEFAULT '[]',
    signals TEXT NOT NULL DEFAULT '{}',
    timings TEXT NOT NULL DEFAULT '{}',
    model TEXT NOT NULL DEFAULT '',
    store TEXT NOT NULL DEFAULT '',
    collection TEXT NOT NULL DEFAULT '',
    truncated TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    verdict TEXT CHECK (verdict IN ('right', 'wrong')),
    correct_answer TEXT,
    feedback_time TEXT
)""",
    "CREATE INDEX IF NOT EXISTS answers_judged ON answers (verdict) WHERE verdict IS NOT NULL",
)
_JSON_COLUMNS = (
    "filters",
    "short_answer_at",
    "citations",
    "retrieved",
    "signals",
    "timings",
    "truncated",
    "extra",
)
# Answer.to_dict() keys kept in their own columns; any other (fields the Answer gains later,
# such as corroboration) go to `extra`, so the log keeps up without a schema change.
_COLUMN_KEYS = frozenset(
    "question answer short_answer refused refusal_reason as_of citations timings "
    "standalone_question retrieved signals".split()
)
MAX_EXTRA_CHARS = 50_000


@dataclasses.dataclass
class ExportReport:
    """What `export_gold` wrote and what it left out, with why."""

    path: Path
    written: int = 0
    unanswerable: int = 0
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "written": self.written,
            "unanswerable": self.unanswerable,
            "skipped": self.skipped,
        }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _cut(text: str, limit: int, field: str, truncated: dict[str, int]) -> str:
    """`text` cut to `limit` characters; the original length goes into `truncated`."""
    if len(text) <= limit:
        return text
    truncated[field] = len(text)
    return text[: limit - 1] + ELLIPSIS


def _day(value: object) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value or "")


def _filters_dict(filters: object) -> dict[str, Any]:
    """The filters an answer was asked with (source, since, until, top_k), empty ones left out.
    As-of is kept in its own column."""
    if filters is None:
        return {}
    if dataclasses.is_dataclass(filters) and not isinstance(filters, type):
        items = dataclasses.asdict(filters)
    elif isinstance(filters, Mapping):
        items = dict(filters)
    else:
        raise TypeError(f"filters must be a mapping or rag.retrieve.Filters, not {filters!r}")
    out: dict[str, Any] = {}
    for key, value in items.items():
        if key == "as_of" or value is None or value == "":
            continue
        out[key] = value if isinstance(value, int | float | bool) else _day(value)
    return out


def model_name(settings: Settings) -> str:
    """The answering model as the settings name it: backend, then model."""
    if settings.llm_backend == "local":
        if settings.llm_model_path is not None:
            return f"local:{settings.llm_model_path.name}"
        from rag.llm import BUNDLED_GGUF

        return f"local:{BUNDLED_GGUF[1]}"
    default = "gpt-4o-mini" if settings.llm_backend == "openai" else ""  # rag.llm's default
    return f"{settings.llm_backend}:{settings.llm_model or default}"


def _contains(haystack: str | None, needle: str) -> bool:
    return bool(haystack) and needle in haystack.casefold()  # type: ignore[union-attr]


class AnswerLog:
    """The answers asked in one data dir, with the user's corrections."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._local = threading.local()  # each thread's (pid, connection)
        self._lock = threading.Lock()
        self._failing = False  # a write failed and was reported; report again after a success

    @classmethod
    def from_settings(cls, settings: Settings, enabled: bool | None = None) -> AnswerLog:
        """The log of `settings.data_dir`; on unless `enabled` (or `settings.log`) says off."""
        if enabled is None:
            enabled = settings.log
        return cls(settings.data_dir / LOG_FILE, enabled=enabled)

    # Connections ------------------------------------------------------------------------------
    @contextmanager
    def _connect(self, wait: float, create: bool) -> Iterator[sqlite3.Connection]:
        """This thread's connection, for one short piece of work.

        Kept open: closing the last connection to a WAL file checkpoints it, 15 ms an answer.
        Never shared across threads or a fork; dropped on any error, and made again when
        the file was moved aside, so a repaired log is used at once.
        """
        exists = self.path.exists()
        if not create and not exists:
            raise InvalidInput(
                f"no answers have been logged in {self.path.parent} yet; ask a question first "
                "(`rag ask`, the UI or the API), or point RAG_DATA_DIR at another data dir"
            )
        held = getattr(self._local, "conn", None)
        if held is not None and (held[0] != os.getpid() or not exists):
            self._drop()
            held = None
        if held is None:
            if not exists:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Questions can be personal: only the user may read the log (SQLite gives its
                # -wal and -shm files the same permissions).
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            conn = self._open()
            self._local.conn = (os.getpid(), conn)
        else:
            conn = held[1]
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
            yield conn
        except BaseException:
            self._drop()
            raise

    def _open(self) -> sqlite3.Connection:
        # Autocommit: every write is its own short transaction, so no lock is held between them.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.create_function("contains", 2, _contains, deterministic=True)
            # WAL's NORMAL sync: a power cut may lose the last answers, never the file; FULL
            # costs an fsync per answer.
            conn.execute("PRAGMA synchronous=NORMAL")
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _drop(self) -> None:
        held = getattr(self._local, "conn", None)
        self._local.conn = None
        if held is not None and held[0] == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                held[1].close()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"{self.path} was written by a newer version (schema {version}); upgrade "
                    "newsrag or set RAG_DATA_DIR to another folder"
                )
            if version < SCHEMA_VERSION:
                # WAL: readers never block the writer and writers append without rewriting.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

    # Writing ----------------------------------------------------------------------------------
    def record(
        self,
        answer: Answer,
        *,
        question: str | None = None,
        as_of: str | dt.date | None = None,
        filters: object = None,
        settings: Settings | None = None,
        store: str | None = None,
    ) -> int | None:
        """Log one answer; its id, or None when logging is off or the log cannot be written.

        `question` is what the user asked (default: the answer's cleaned question), `as_of`
        the day it was asked as of (default: the answer's), `filters` a `Filters` or a mapping
        (source, since, until, top_k), `store` the collection name. Never raises.
        """
        if not self.enabled:
            return None
        try:
            row = self._row(answer, question, as_of, filters, settings, store)
            columns = ", ".join(row)
            marks = ", ".join("?" * len(row))
            with self._connect(WRITE_WAIT_SECONDS, create=True) as conn:
                cur = conn.execute(
                    f"INSERT INTO answers ({columns}) VALUES ({marks})", tuple(row.values())
                )
                entry_id = cur.lastrowid
        except Exception as e:  # the answer matters more than its log entry
            self._report(e)
            return None
        if self._failing:
            log.warning("answer log %s is being written again", self.path)
            self._failing = False
        return entry_id

    def _report(self, error: Exception) -> None:
        if self._failing:
            log.debug("answer not logged: %s", error)
            return
        self._failing = True
        log.warning(
            "answers are not being logged: %s cannot be written (%s: %s). Answers go on; free "
            "space, fix the folder's permissions, move a damaged file aside, or set "
            "RAG_LOG=false to stop logging. (Said once until logging works again.)",
            self.path,
            type(error).__name__,
            error,
        )

    def _row(
        self,
        answer: Answer,
        question: str | None,
        as_of: str | dt.date | None,
        filters: object,
        settings: Settings | None,
        store: str | None,
    ) -> dict[str, Any]:
        cut: dict[str, int] = {}
        short = answer.short_answer
        citations = []
        for c in answer.citations:
            citations.append(
                {
                    "n": c.n,
                    "doc_id": c.doc_id,
                    "title": _cut(c.title, MAX_PASSAGE_CHARS, f"citation_{c.n}_title", cut),
                    "source": c.source,
                    "url": c.url,
                    "date": c.date,
                    "start": c.start,
                    "end": c.end,
                    "text": _cut(c.text, MAX_PASSAGE_CHARS, f"citation_{c.n}", cut),
                }
            )
        row: dict[str, Any] = {
            "time": _now(),
            "question": _cut(question or answer.question, MAX_TEXT_CHARS, "question", cut),
            "standalone_question": _cut(
                answer.standalone_question, MAX_TEXT_CHARS, "standalone_question", cut
            ),
            "as_of": _day(as_of or answer.as_of),
            "filters": _filters_dict(filters),
            "short_answer": None if short is None else short.text,
            "short_answer_at": None
            if short is None
            else {"doc_id": short.doc_id, "start": short.start, "end": short.end},
            "answer": _cut(answer.text, MAX_TEXT_CHARS, "answer", cut),
            "refused": int(answer.refused),
            "refusal_reason": answer.refusal_reason,
            "citations": citations,
            "retrieved": answer.retrieved,
            "signals": answer.signals,
            "timings": {k: round(v, 4) for k, v in answer.timings.items()},
            "model": model_name(settings) if settings is not None else "",
            "store": settings.store_location if settings is not None else "",
            "collection": store or "",
        }
        extra = {k: v for k, v in answer.to_dict().items() if k not in _COLUMN_KEYS}
        if len(json.dumps(extra, ensure_ascii=False, default=str)) > MAX_EXTRA_CHARS:
            cut["extra"] = len(json.dumps(extra, ensure_ascii=False, default=str))
            extra = {}
        row["extra"] = extra
        row["truncated"] = cut
        for key in _JSON_COLUMNS:
            row[key] = json.dumps(row[key], ensure_ascii=False, default=str)
        return row

    def feedback(self, entry_id: int, right: bool, answer: str | None = None) -> dict:
        """Mark a logged answer right or wrong; `answer` is the correct one (only when wrong).
        Marking again replaces the earlier verdict. Returns the updated entry."""
        answer = (answer or "").strip() or None
        if right and answer is not None:
            raise InvalidInput(
                "a correct answer goes with --wrong; --right confirms the logged answer as it is"
            )
        if answer is not None and len(answer) > MAX_TEXT_CHARS:
            raise InvalidInput(f"the correct answer is too long; keep it under {MAX_TEXT_CHARS}")
        with self._connect(READ_WAIT_SECONDS, create=False) as conn:
            cur = conn.execute(
                "UPDATE answers SET verdict = ?, correct_answer = ?, feedback_time = ? "
                "WHERE id = ?",
                ("right" if right else "wrong", answer, _now(), entry_id),
            )
            if cur.rowcount == 0:
                raise unknown_entry(entry_id)
        entry = self.get(entry_id)
        assert entry is not None
        return entry

    # Reading ----------------------------------------------------------------------------------
    def recent(self, n: int = 10, search: str | None = None) -> list[dict]:
        """The `n` newest entries, newest first; with `search`, those whose question, answer
        or correction contain it (any case)."""
        if n < 1:
            raise InvalidInput(f"-n must be 1 or more, not {n}")
        sql = "SELECT * FROM answers"
        args: list[Any] = []
        if search and search.strip():
            needle = search.strip().casefold()
            fields = ("question", "standalone_question", "answer", "correct_answer")
            sql += " WHERE " + " OR ".join(f"contains({f}, ?)" for f in fields)
            args += [needle] * len(fields)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(n)
        return self._select(sql, args)

    def get(self, entry_id: int) -> dict | None:
        """One entry by id, or None when there is none."""
        rows = self._select("SELECT * FROM answers WHERE id = ?", [entry_id])
        return rows[0] if rows else None

    def _select(self, sql: str, args: list[Any]) -> list[dict]:
        with self._connect(READ_WAIT_SECONDS, create=False) as conn:
            cur = conn.execute(sql, args)
            names = [d[0] for d in cur.description]
            return [self._entry(dict(zip(names, row, strict=True))) for row in cur.fetchall()]

    @staticmethod
    def _entry(entry: dict) -> dict:
        for key in _JSON_COLUMNS:
            if entry[key] is not None:
                entry[key] = json.loads(entry[key])
        entry["refused"] = bool(entry["refused"])
        verdict = entry.pop("verdict")
        entry["feedback"] = (
            None
            if verdict is None
            else {
                "verdict": verdict,
                "answer": entry.pop("correct_answer"),
                "time": entry.pop("feedback_time"),
            }
        )
        entry.pop("correct_answer", None)
        entry.pop("feedback_time", None)
        return entry

    # Gold -------------------------------------------------------------------------------------
    def export_gold(self, path: Path) -> ExportReport:
        """Write the judged answers as a gold file that `rag eval --gold` reads.

        Confirmed answers keep their short answer; corrected ones take the correction. A
        refusal confirmed right, and an answer marked wrong with no correction (the articles
        do not hold one), become unanswerable items. Left out, and counted: a refusal marked
        wrong without the right answer (nothing to score against), a confirmed answer with no
        short answer, a question logged cut. The latest verdict on a question (and as-of day)
        wins. Evidence is the cited articles that hold the gold answer.
        """
        path = Path(path)
        report = ExportReport(path)
        latest: dict[tuple[str, str], dict] = {}
        judged = "SELECT * FROM answers WHERE verdict IS NOT NULL ORDER BY feedback_time, id"
        for entry in self._select(judged, []):
            item = self._gold_item(entry, report)
            if item is not None:
                key = (normalize(item["question"]), item["question_date"])
                latest.pop(key, None)  # re-inserted: the file keeps the order of judging
                latest[key] = item
        items = list(latest.values())
        if not items:
            raise InvalidInput(
                "no logged answer is marked right or wrong (or none can be scored); mark some "
                "with `rag feedback ID --right` or `--wrong --answer TEXT` (ids: `rag logs`)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for item in items:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
        tmp.replace(path)
        report.written = len(items)
        report.unanswerable = sum(not item["answers"] for item in items)
        return report

    @staticmethod
    def _gold_item(entry: dict, report: ExportReport) -> dict | None:
        feedback = entry["feedback"]
        if "question" in entry["truncated"]:
            report.skip("question was logged cut")
            return None
        if feedback["verdict"] == "right":
            if entry["refused"]:
                answers: list[str] = []
            elif entry["short_answer"]:
                answers = [entry["short_answer"]]
            else:
                report.skip("confirmed answer has no short answer")
                return None
        elif feedback["answer"]:
            answers = [feedback["answer"]]
        elif entry["refused"]:
            report.skip("refusal marked wrong without the right answer (use --answer)")
            return None
        else:
            answers = []  # wrong, and no right answer: the articles do not hold one
        evidence: list[str] = []
        wanted = [normalize(a) for a in answers]
        for c in entry["citations"]:
            words = f" {normalize(c['text'])} "
            if c["doc_id"] not in evidence and any(w and f" {w} " in words for w in wanted):
                evidence.append(c["doc_id"])
        # A follow-up in a chat ("and who replaced him?") is only a question once rewritten.
        question = entry["standalone_question"] or entry["question"]
        item = {
            "id": f"log-{entry['id']}",
            "question": question,
            "answers": answers,
            "evidence_doc_ids": evidence,
            "answerable": bool(answers),
            "question_date": entry["as_of"],
            "type": "log",
        }
        scope = {k: v for k, v in entry["filters"].items() if k in ("source", "since", "until")}
        if scope:
            item["filters"] = scope  # asked within these; `rag eval` does not apply them yet
        return item


def unknown_entry(entry_id: int) -> InvalidInput:
    return InvalidInput(f"no logged answer has id {entry_id}; `rag logs` lists the recent ones")
