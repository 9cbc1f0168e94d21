"""Read articles from files, folders and JSONL into one shape; bad input is reported, not fatal.

Formats: `.md`/`.markdown`/`.txt` (optional YAML front matter), `.html`/`.htm` (main text only)
and `.jsonl` (one article a line). Folders are walked recursively; hidden entries are skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
HTML_SUFFIXES = {".html", ".htm"}
JSONL_SUFFIXES = {".jsonl"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES
# Elements whose inner text is another document or a fallback a browser does not show as the
# page; trafilatura's fallback extraction would otherwise take it as article text.
EMBEDDED_ELEMENTS = ("iframe", "frame", "noscript", "object", "embed", "applet", "template")
EMBEDDED_XPATH = [f"//{tag}" for tag in EMBEDDED_ELEMENTS]


@dataclass
class Article:
    id: str
    text: str
    title: str = ""
    source: str = ""
    url: str = ""
    date: str = ""  # YYYY-MM-DD when known
    authors: list[str] = field(default_factory=list)
    path: str = ""  # the file it came from

    def fingerprint(self) -> str:
        """Content hash: a change to the text or any field re-indexes the article."""
        data = asdict(self)
        data.pop("path")
        blob = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:32]


@dataclass
class ReadError:
    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


class InputError(Exception):
    """A file or line that cannot be read as an article; the message says why."""


def read_sources(paths: Iterable[str | Path], max_bytes: int) -> Iterator[Article | ReadError]:
    """Yield every article under `paths`, and a ReadError for each file or line that fails."""
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            yield ReadError(str(path), "no such file or folder")
        elif path.is_dir():
            for file in walk_folder(path):
                yield from read_file(file, max_bytes, root=path)
        elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
            yield ReadError(str(path), _unsupported(path))
        else:
            yield from read_file(path, max_bytes, root=path.parent)


def walk_folder(folder: Path) -> Iterator[Path]:
    """Supported files below `folder`, sorted for stable runs; unknown kinds are skipped quietly."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if not name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES:
                yield p


def estimate_count(paths: Iterable[str | Path]) -> int:
    """A cheap upper bound of the articles under `paths`, for progress bars."""
    total = 0
    for raw in paths:
        path = Path(raw)
        files = walk_folder(path) if path.is_dir() else [path] if path.is_file() else []
        for f in files:
            if f.suffix.lower() in JSONL_SUFFIXES:
                try:
                    with open(f, "rb") as fh:
                        total += sum(
                            chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")
                        )
                except OSError:  # reported when it is read
                    total += 1
            else:
                total += 1
    return total


def read_file(path: Path, max_bytes: int, root: Path) -> Iterator[Article | ReadError]:
    suffix = path.suffix.lower()
    try:
        if suffix in JSONL_SUFFIXES:
            yield from _read_jsonl(path, max_bytes)
            return
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(
                f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit for one "
                "article (raise RAG_MAX_ARTICLE_MB if it really is one article)"
            )
        text = decode(path.read_bytes())
        doc_id = path.relative_to(root).with_suffix("").as_posix()
        article = _read_html(text, doc_id) if suffix in HTML_SUFFIXES else _read_text(text, doc_id)
        article.path = str(path.resolve())
        yield article
    except InputError as e:
        yield ReadError(str(path.resolve()), str(e))
    except OSError as e:
        yield ReadError(str(path.resolve()), f"cannot read: {e.strerror or e}")


def decode(data: bytes) -> str:
    if not data.strip():
        raise InputError("empty file")
    if b"\x00" in data[:8192]:
        raise InputError("binary file, not text (it holds NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(
            f"not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "re-save it as UTF-8, e.g. `iconv -f cp1252 -t utf-8`"
        ) from None


def _read_text(text: str, doc_id: str) -> Article:
    meta, body = split_front_matter(text)
    return _article_from_fields({"id": doc_id, **meta, "text": body})


def split_front_matter(text: str) -> tuple[dict, str]:
    if not text.startswith("---"):
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        return {}, text
    try:
        meta = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as e:
        raise InputError(f"front matter is not valid YAML: {e}") from None
    if not isinstance(meta, dict):
        raise InputError("front matter must be a mapping of fields (title: ..., date: ...)")
    body = text[end + 4 :]
    return meta, body.lstrip("-").lstrip("\n")


def _read_html(html: str, doc_id: str) -> Article:
    import trafilatura  # imported late: it is only needed for HTML
    from trafilatura.settings import Document

    doc = trafilatura.bare_extraction(
        html,
        include_comments=False,
        include_tables=True,
        with_metadata=True,
        prune_xpath=EMBEDDED_XPATH,
    )
    if not isinstance(doc, Document) or not (doc.text or "").strip():
        raise InputError("no article text found in this HTML page")
    return _article_from_fields(
        {
            "id": doc_id,
            "title": doc.title or "",
            "source": doc.sitename or doc.hostname or "",
            "url": doc.url or "",
            "date": doc.date or "",
            "authors": doc.author or "",
            "text": doc.text,
        }
    )


def _read_jsonl(path: Path, max_bytes: int) -> Iterator[Article | ReadError]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                if len(raw) > max_bytes:
                    raise InputError(
                        f"line is {len(raw) / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB "
                        "limit for one article (RAG_MAX_ARTICLE_MB)"
                    )
                try:
                    row = json.loads(decode(raw))
                except json.JSONDecodeError as e:
                    # Some of json's messages end in "at" ("Unterminated string starting at").
                    what = e.msg.removesuffix(" at")
                    raise InputError(f"not valid JSON ({what} at column {e.colno})") from None
                if not isinstance(row, dict):
                    raise InputError("expected a JSON object with a 'text' field")
                if "id" not in row or row["id"] in (None, ""):
                    row["id"] = _derived_id(path, row)
                article = _article_from_fields(row)
                article.path = str(path.resolve())
                yield article
            except InputError as e:
                yield ReadError(str(path.resolve()), str(e), line=lineno)


def _derived_id(path: Path, row: dict) -> str:
    key = str(row.get("url") or row.get("title") or row.get("text") or "")
    return f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def _article_from_fields(row: dict) -> Article:
    text = row.get("text")
    if not isinstance(text, str):
        raise InputError("missing 'text' (the article body must be a string)")
    if not text.strip():
        raise InputError("article text is empty")
    authors = row.get("authors") or []
    if isinstance(authors, str):
        authors = [a.strip() for a in authors.replace(";", ",").split(",") if a.strip()]
    elif not isinstance(authors, list):
        raise InputError("'authors' must be a list of names or a string")
    return Article(
        id=_field(row, "id"),
        text=text,
        title=_field(row, "title"),
        source=_field(row, "source"),
        url=_field(row, "url"),
        date=normalise_date(row.get("date")),
        authors=[str(a) for a in authors],
    )


def _field(row: dict, key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise InputError(f"'{key}' must be a string")
    return str(value).strip()


def normalise_date(value: object) -> str:
    """YYYY-MM-DD for anything ISO-like; '' for nothing; the text as given otherwise."""
    if value in (None, ""):
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    text = str(value).strip()
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        log.debug("unrecognised date %r kept as text", text)
        return text


def _unsupported(path: Path) -> str:
    kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
    return f"unsupported file type '{path.suffix or '(none)'}'; ingestion reads {kinds} and folders"
