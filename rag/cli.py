"""The `rag` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rag import __version__

EPILOG = """\
Settings come from RAG_* environment variables or a TOML file (RAG_CONFIG_FILE, or ./rag.toml);
see the README. The data directory (RAG_DATA_DIR) holds the store, so several can live side by side.
"""

log = logging.getLogger("rag")


def _settings(args: argparse.Namespace):
    from rag.config import Settings

    overrides = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
    return Settings(**overrides)


def _print_json(data: object) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.ingest import ingest

    settings = _settings(args)
    report = ingest(args.paths, settings, prune=args.prune, progress=not args.quiet)
    if args.json:
        _print_json(report.to_dict())
    else:
        a, c = report.articles, report.chunks
        print(
            f"Articles: {a.added} added, {a.updated} updated, {a.unchanged} unchanged, "
            f"{a.removed} removed\n"
            f"Chunks:   {c.added} added, {c.updated} updated, {c.unchanged} unchanged, "
            f"{c.removed} removed\n"
            f"Store:    {settings.store_location} (collection {report.collection}), "
            f"{report.seconds:.1f} s"
        )
        if report.errors:
            print(f"\n{len(report.errors)} input(s) could not be ingested:", file=sys.stderr)
            for e in report.errors:
                print(f"  {e}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    from rag.status import status

    info = status(_settings(args))
    if args.json:
        _print_json(info)
        return 0
    last = info["last_ingestion"] or {}
    print(f"Store:        {info['store']}")
    print(f"Collection:   {info['collection']}")
    print(f"Embeddings:   {info['embed_model']} ({info['dim']} dimensions)")
    print(f"Articles:     {info['articles']}")
    print(f"Chunks:       {info['chunks']}")
    if last:
        errs = len(last.get("errors", []))
        print(
            f"Last ingest:  {last.get('finished')} from {', '.join(last.get('sources', []))}"
            f" ({errs} error{'s' if errs != 1 else ''})"
        )
    else:
        print("Last ingest:  never; run `rag ingest corpus/`")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Ask questions about a pile of news articles and get answers cited to "
        "the passages they come from. Runs offline by default.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--data-dir", help="store location (default: $RAG_DATA_DIR)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "ingest",
        help="add articles to the store (incremental)",
        description="Read articles from files and folders, clean and chunk them, embed the "
        "chunks and store them. Unchanged articles cost nothing; changed ones replace their "
        "chunks. Formats: .md/.txt (optional YAML front matter: title, source, url, date, "
        "authors), .html (main text only) and .jsonl (one article a line: text, plus optional "
        "id, title, source, url, date, authors). Exit status 1 when some input failed; the "
        "rest is ingested all the same.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (recursive)")
    p.add_argument(
        "--prune",
        action="store_true",
        help="remove indexed articles that are no longer in the given PATHs",
    )
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser(
        "status",
        help="show what is indexed",
        description="Articles, chunks, embedding model, store and last ingestion.",
    )
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from pydantic import ValidationError

    from rag.embeddings import MissingDependency
    from rag.store import StoreUnavailable

    try:
        return int(args.func(args) or 0)
    except (StoreUnavailable, MissingDependency, FileNotFoundError) as e:
        print(f"rag: {e}", file=sys.stderr)
    except ValidationError as e:
        print(f"rag: invalid setting: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("rag: interrupted; run the same command again to finish", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
