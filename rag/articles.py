"""Read articles from files, folders and JSONL into one shape; bad input is reported, not fatal.

Formats: `.md`/`.markdown`/`.txt` (optional YAML front matter), `.html`/`.htm` (main text only)
and `.jsonl` (one article a line). Folders are walked recursively; hidden entries are skipped.

An article's id is its front-matter or JSONL `id`; else, for a file, the name of the folder you
named followed by the path below it, without the extension (`rag ingest news/cnn` reads
`news/cnn/world/a.md` as `cnn/world/a`; a file named on its own, `news/cnn/a.md`, is `cnn/a`), so
the same file name in two folders never collides by accident.

Symlinked folders are followed; one leading back inside the folder being read, or to a folder
already read, is not entered again (that is how loops end). A folder that cannot be read, and a
symbolic link that leads nowhere, are reported as a ReadError whose `path` is exactly that folder
(the link's target), so `--prune` can keep every article stored under it.
"""

from __future__ import annotations

import datetime as dt
import errno
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
    line: int | None = None  # its line in a JSONL file

    def fingerprint(self) -> str:
        """Content hash: a change to the text or any field re-indexes the article."""
        data = asdict(self)
        data.pop("path")  # where it came from is not content
        data.pop("line")
        blob = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:32]


@dataclass
class ReadError:
    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{place(self.path, self.line)}: {self.reason}"


def place(path: str, line: int | None) -> str:
    return f"{path}:{line}" if line is not None else path


class InputError(Exception):
    """A file or line that cannot be read as an article; the message says why."""


def read_sources(paths: Iterable[str | Path], max_bytes: int) -> Iterator[Article | ReadError]:
    """Yield every article under `paths`, and a ReadError for each file, line or folder that fails.

    The order is stable: `paths` as given, each folder sorted by name. A file named twice (say a
    folder and a file in it) is read once. An id that an earlier article of this run already has
    is a ReadError naming both places; the earlier article keeps the id.
    """
    holders: dict[str, str] = {}  # article id -> the place that has it
    for item in _read_each_file_once(paths, max_bytes):
        if isinstance(item, Article):
            where = place(item.path, item.line)
            first = holders.setdefault(item.id, where)
            if first != where:
                yield ReadError(
                    item.path,
                    f"duplicate article id '{item.id}': {first} has it already and keeps it; "
                    "give one of them its own id (the front-matter or JSONL 'id')",
                    line=item.line,
                )
                continue
        yield item


def _read_each_file_once(
    paths: Iterable[str | Path], max_bytes: int
) -> Iterator[Article | ReadError]:
    done: set[str] = set()  # real paths of the files read so far

    def first_time(file: Path) -> bool:
        real = os.path.realpath(file)
        if real in done:
            return False
        done.add(real)
        return True

    for raw in paths:
        path = Path(raw)
        try:
            is_dir = path.is_dir()
            exists = is_dir or path.exists()
        except OSError as e:  # e.g. a parent folder this user may not enter
            yield ReadError(os.path.realpath(path), f"cannot read: {e.strerror or e}")
            continue
        if not exists:
            yield ReadError(str(path), "no such file or folder")
        elif is_dir:
            for item in walk_folder(path):
                if isinstance(item, ReadError):
                    yield item
                elif first_time(item):
                    yield from read_file(item, max_bytes, root=path)
        elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
            yield ReadError(str(path), _unsupported(path))
        elif first_time(path):
            yield from read_file(path, max_bytes, root=path.parent)


def walk_folder(folder: Path) -> Iterator[Path | ReadError]:
    """Supported files below `folder`, sorted for stable runs, and a ReadError for each folder
    that cannot be read or link that leads nowhere. Unknown kinds are skipped quietly.

    Symlinked folders are followed, each real folder once. Not followed: a link back inside
    `folder` (its target is read at its own place), and a link to a folder already entered or to
    one that holds `folder` (both would loop).
    """
    top = Path(os.path.realpath(folder))
    entered = {str(top)}  # real paths of the folders walked or about to be
    failures: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=failures.append, followlinks=True):
        yield from map(_folder_error, failures)
        failures.clear()
        kept = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            sub = os.path.join(dirpath, name)
            real = Path(os.path.realpath(sub))
            if str(real) in entered:
                continue
            if os.path.islink(sub) and (real.is_relative_to(top) or top.is_relative_to(real)):
                log.debug("not following %s: %s is read at its own place, or holds it", sub, real)
                continue
            entered.add(str(real))
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if name.startswith("."):
                continue
            if p.is_symlink() and not os.path.exists(p):  # dangling, or a loop of links
                yield ReadError(
                    os.path.realpath(p),
                    f"cannot read: the symbolic link {p} leads here, and nothing is here; "
                    "nothing was read through it, and --prune keeps the articles stored from "
                    "here; fix the link or remove it",
                )
            elif p.suffix.lower() in SUPPORTED_SUFFIXES:
                yield p
    yield from map(_folder_error, failures)  # only the last folder's can be left


def _folder_error(e: OSError) -> ReadError:
    folder = os.path.realpath(e.filename) if e.filename else "?"
    fix = (
        f"let this user read and enter it (e.g. `chmod -R u+rX {folder}` as its owner)"
        if e.errno in (errno.EACCES, errno.EPERM)
        else "fix it"
    )
    return ReadError(
        folder,
        f"cannot read this folder ({e.strerror or e}): nothing in it was read, and --prune keeps "
        f"the articles stored from it; {fix} and ingest again",
    )


def file_id(path: Path, root: Path) -> str:
    """The id of an article file without an id of its own: the name of the folder you named,
    then the path below it, without the extension (`cnn/world/2024-01-01`)."""
    below = path.relative_to(root).with_suffix("").as_posix()
    name = Path(os.path.abspath(root)).name  # abspath: `.` is named after the working folder
    return f"{name}/{below}" if name else below


def estimate_count(paths: Iterable[str | Path]) -> int:
    """A cheap upper bound of the articles under `paths`, for progress bars."""
    total = 0
    for raw in paths:
        path = Path(raw)
        try:
            files = walk_folder(path) if path.is_dir() else [path] if path.is_file() else []
        except OSError:  # reported when it is read
            files = []
        for f in files:
            if isinstance(f, ReadError):
                continue
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
        doc_id = file_id(path, root)
        article = _read_html(text, doc_id) if suffix in HTML_SUFFIXES else _read_text(text, doc_id)
        article.path = os.path.realpath(path)
        yield article
    except InputError as e:
        yield ReadError(os.path.realpath(path), str(e))
    except OSError as e:
        yield ReadError(os.path.realpath(path), f"cannot read: {e.strerror or e}")


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


def extract_html(html: str, url: str | None = None):
    """trafilatura's main text and metadata of a page (a Document, or None), the same way for
    files and for pages fetched from the web: embedded frames and objects are never read, and
    dates come from the page's markup and URL only (a text search finds "since 2009")."""
    import trafilatura  # imported late: it is only needed for HTML

    doc = trafilatura.bare_extraction(
        html,
        url=url,
        include_comments=False,
        include_tables=True,
        with_metadata=True,
        prune_xpath=EMBEDDED_XPATH,
        date_extraction_params={"original_date": True, "extensive_search": False},
    )
    assert not isinstance(doc, dict)  # a dict only with as_dict=True
    return doc


def _read_html(html: str, doc_id: str) -> Article:
    from trafilatura.settings import Document

    doc = extract_html(html)
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
                article.path = os.path.realpath(path)
                article.line = lineno
                yield article
            except InputError as e:
                yield ReadError(os.path.realpath(path), str(e), line=lineno)


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
