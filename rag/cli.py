"""The `rag` command line."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from rag import __version__

EPILOG = """\
Settings come from RAG_* environment variables or a TOML file (RAG_CONFIG_FILE, or ./rag.toml);
see the README. The data directory (RAG_DATA_DIR) holds the store, so several can live side by side.
"""

log = logging.getLogger("rag")
BUNDLED_CORPUS = Path(__file__).resolve().parent.parent / "corpus"
ECHO_CHARS = 300  # a failed question is echoed cut to this


def _settings(args: argparse.Namespace):
    from rag.config import Settings

    return Settings(data_dir=Path(args.data_dir)) if args.data_dir else Settings()


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
        for w in report.warnings:
            print(f"warning: {w}", file=sys.stderr)
        if report.errors:
            print(f"\n{len(report.errors)} input(s) could not be ingested:", file=sys.stderr)
            for e in report.errors:
                print(f"  {e}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_watch(args: argparse.Namespace) -> int:
    from rag.components import build
    from rag.ingest import Ingestor
    from rag.watch import Watcher, parse_interval, summary

    every = parse_interval(args.every)
    settings = _settings(args)
    # Before any thread starts, so the model's thread pools inherit it: a background job must
    # not slow down the questions a server on the same machine is answering.
    os.nice(settings.watch_nice)
    parts = build(settings)
    watcher = Watcher(
        Ingestor(settings, parts.store, parts.embed),
        args.sources,
        every,
        on_report=lambda r: print(f"{_now()} {summary(r)}", flush=True),
    )
    print(
        f"Watching {len(args.sources)} source(s) every {args.every}; Ctrl+C stops.",
        file=sys.stderr,
    )
    watcher.run_forever(max_runs=args.runs)
    return 0


def cmd_feeds(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rag.feeds import FeedList

    feeds = FeedList(_settings(args).data_dir)
    if args.feeds_cmd == "add":
        feed = feeds.add(args.url)
        print(f"Watching {feed.url}; `rag serve` runs it every --every (10m).", file=sys.stderr)
        return 0
    if args.feeds_cmd == "remove":
        feeds.remove(args.url)
        print(f"Stopped watching {args.url}; what it added stays indexed.", file=sys.stderr)
        return 0
    known = feeds.all()
    if args.json:
        _print_json([asdict(f) for f in known])
    elif not known:
        print("No feeds are watched; add one with `rag feeds add URL`.", file=sys.stderr)
    for f in known if not args.json else []:
        result = f"failed: {f.last_error}" if f.last_error else (f.last_result or "not run yet")
        print(f"{f.url}\n  since {f.added}; last run {f.last_run or 'never'}: {result}")
    return 0


def _now() -> str:
    from datetime import datetime

    return datetime.now().isoformat(timespec="seconds")


def cmd_status(args: argparse.Namespace) -> int:
    from rag.status import status

    if args.verify or args.repair:
        return _verify(args)
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


def _verify(args: argparse.Namespace) -> int:
    """`rag status --verify/--repair`: check every chunk, and rewrite what is damaged."""
    from rag.status import verify_store

    report, fixed = verify_store(
        _settings(args), repair=args.repair, notify=lambda m: print(m, file=sys.stderr)
    )
    final = fixed.after if fixed and fixed.after else report
    if args.json:
        _print_json({"verify": report.to_dict(), "repair": fixed.to_dict() if fixed else None})
    else:
        print(f"Checked {report.chunks} chunks of {report.articles} articles.")
        problems = {
            "chunks without an embedding": report.missing_embeddings,
            "chunks not found by their own vector": report.unfindable,
            "incomplete articles": list(report.incomplete),
            "articles out of step in the keyword index": report.keyword_out_of_step,
        }
        for what, items in problems.items():
            if items:
                more = " …" if len(items) > 5 else ""
                print(f"  {len(items)} {what}: {', '.join(items[:5])}{more}")
        for damage in report.keyword_damage:
            print(f"  keyword index damaged: {damage}")
        if report.ok:
            print("The store is consistent.")
        elif fixed is None:
            print(
                "Run `rag status --repair` to rewrite the damaged articles"
                + (" and rebuild the keyword index." if report.keyword_damage else ".")
            )
        else:
            keyword = (
                "the keyword index built again"
                if fixed.keyword_rebuilt
                else f"{fixed.keyword_fixed} re-read into the keyword index"
            )
            print(
                f"Repaired: {len(fixed.rewritten)} articles rewritten, {len(fixed.removed)} "
                f"removed (run `rag ingest` again to re-add them), {keyword}."
            )
            print("The store is consistent." if final.ok else "Some damage remains; see above.")
    return 0 if final.ok else 1


def _engine(args: argparse.Namespace):
    from rag.engine import Engine

    return Engine.from_settings(_settings(args))


def _filters(args: argparse.Namespace) -> dict:
    return {
        "top_k": args.top_k,
        "source": args.source,
        "since": args.since,
        "until": args.until,
        "as_of": args.as_of,
    }


def _print_answer(answer, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False), flush=True)
        return
    print(answer.text)
    if answer.refused and answer.refusal_reason:
        print(f"(why: {answer.refusal_reason})")
    if answer.citations:
        print("\nClosest passages:" if answer.refused else "\nSources:")
        for c in answer.citations:
            where = ", ".join(x for x in (c.source, c.date) if x)
            print(
                f"  [{c.n}] {c.title or c.doc_id}"
                + (f" ({where})" if where else "")
                + (f" {c.url}" if c.url else "")
            )
            print(f"      “{' '.join(c.text.split())[:300]}” (chars {c.start}-{c.end})")
    print(flush=True)


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.errors import LLMUnavailable, RagError

    if args.question != "-":
        _check_utf8(args.question)
    engine = _engine(args)
    if args.question != "-":
        if args.json:
            _print_answer(engine.ask(args.question, **_filters(args)), True)
            return 0
        # Stream the model's draft to the terminal, then print the checked answer over it.
        stream = engine.stream(args.question, **_filters(args))
        for token in stream:
            if sys.stderr.isatty():
                sys.stderr.write(token)
                sys.stderr.flush()
        if sys.stderr.isatty():
            sys.stderr.write("\r\033[J")
        _print_answer(stream.answer, False)
        return 0
    # One question a line on stdin, one JSON answer a line on stdout; the model loads once.
    status = 0
    for n, raw in enumerate(_stdin_lines(), 1):
        try:
            # Decoded line by line: one line that is not UTF-8 must not stop the others.
            question = raw.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            status = max(status, 1)
            shown = raw.decode("utf-8", "replace").strip()
            msg = (
                f"line {n} is not UTF-8 text (byte {raw[e.start]:#04x} at position {e.start}); "
                "save the questions as UTF-8"
            )
            _print_failure(n, shown, msg, args.json)
            continue
        if not question:
            continue
        try:
            _print_answer(engine.ask(question, **_filters(args)), args.json)
        except (ValueError, RagError) as e:
            # The worst failure decides the exit status: 3 when the model could not be reached.
            status = max(status, e.exit_code if isinstance(e, LLMUnavailable) else 1)
            _print_failure(n, question, str(e), args.json)
    return status


def _check_utf8(question: str) -> None:
    """Python decodes a command line that is not UTF-8 into lone surrogates, which no model or
    tokenizer takes: say so, rather than fail deep inside."""
    from rag.errors import InvalidInput

    try:
        question.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidInput(
            f"the question is not UTF-8 text (a byte at position {e.start}); "
            "set the terminal to UTF-8 or pass the question through `rag ask -` from a UTF-8 file"
        ) from None


def _stdin_lines() -> Iterator[bytes]:
    """stdin's lines as bytes (a test's text stdin is encoded back as it was decoded)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        yield from buffer
    else:
        yield from (line.encode("utf-8", "surrogateescape") for line in sys.stdin)


def _print_failure(line: int, question: str, error: str, as_json: bool) -> None:
    shown = question if len(question) <= ECHO_CHARS else question[:ECHO_CHARS] + "…"
    out = {"line": line, "question": shown, "error": error}
    print(json.dumps(out, ensure_ascii=False) if as_json else f"error: {error}", flush=True)


def cmd_chat(args: argparse.Namespace) -> int:
    from rag.errors import InvalidInput, LLMUnavailable

    if isinstance(sys.stdin, io.TextIOWrapper):
        # A line that is not UTF-8 arrives as lone surrogates (refused below), instead of an
        # error that also loses the lines read ahead with it.
        sys.stdin.reconfigure(errors="surrogateescape")
    engine = _engine(args)
    history: list[tuple[str, str]] = []
    print("Ask about the articles. Follow-up questions work. /new starts over, /quit ends.")
    while True:
        try:
            question = input("\n> ").strip()
            _check_utf8(question)
        except EOFError:
            print()
            return 0
        except InvalidInput as e:  # one bad line must not end the conversation
            print(f"error: {e}")
            continue
        if question in ("/quit", "/exit"):
            return 0
        if question == "/new":
            history.clear()
            print("(new conversation)")
            continue
        if not question:
            continue
        try:
            answer = engine.chat(history, question, **_filters(args))
        except (ValueError, LLMUnavailable) as e:
            print(f"error: {e}")
            continue
        _print_answer(answer, False)
        history.append((question, answer.text))


def cmd_eval(args: argparse.Namespace) -> int:
    from rag import evaluate as ev

    settings = _settings(args)
    result = ev.run_eval(
        settings,
        gold=args.gold or ev.DEFAULT_GOLD,
        corpus=args.corpus or ev.DEFAULT_CORPUS,
        top_k=args.top_k,
        limit=args.limit,
    )
    folder = ev.write_report(result, args.out or ev.ROOT / "evals" / "reports")
    old = ev.load_report(args.compare) if args.compare else None
    failures = ev.check_thresholds(result, args.thresholds) if args.thresholds else []
    if args.json:
        _print_json(
            {
                "report": str(folder),
                "summary": result["summary"],
                "judge": result["judge"],
                "failures": failures,
                "deltas": ev.deltas(result, old) if old else None,
            }
        )
    else:
        print(ev.markdown_table(result, old))
        print(f"\nReport: {folder}")
        for f in failures:
            print(f"BELOW THRESHOLD: {f}", file=sys.stderr)
    return 1 if failures else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from rag.engine import Engine
    from rag.ingest import ingest

    settings = _settings(args)
    engine = Engine.from_settings(settings)
    if engine.store.count() == 0:
        corpus = Path(args.corpus) if args.corpus else BUNDLED_CORPUS
        print(f"The store is empty: ingesting {corpus} first.", file=sys.stderr)
        report = ingest([corpus], settings)
        for e in report.errors:
            print(f"  skipped {e}", file=sys.stderr)
    from rag.feeds import FeedList
    from rag.ingest import Ingestor
    from rag.watch import Watcher, parse_interval

    # Ingestion runs inside the server, through its own store: questions are answered while it
    # runs, and nothing else writes to the store behind the server's back. The same watcher
    # runs --watch and the feeds added in the UI (kept in the data dir).
    watcher = Watcher(
        Ingestor(settings, engine.store, engine.embed, foreground=engine.foreground),
        args.watch or [],
        parse_interval(args.every),
        feeds=FeedList(settings.data_dir),
    )
    watcher.start()
    from ui.app import launch

    host = args.host or settings.ui_host
    port = args.port or settings.ui_port
    print(f"Open http://{host}:{port} in a browser (Ctrl+C stops).", file=sys.stderr)
    launch(settings, host, port, engine=engine, watcher=watcher)
    return 0


def _top_k(text: str) -> int:
    from rag.config import check_top_k
    from rag.errors import InvalidInput

    try:
        return check_top_k(text)
    except InvalidInput as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    from rag.config import TOP_K_MAX, TOP_K_MIN

    top_k_help = f"chunks to retrieve, {TOP_K_MIN} to {TOP_K_MAX} (default: RAG_TOP_K, 6)"
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
        "id, title, source, url, date, authors), and http(s) URLs: an RSS or Atom feed ingests "
        "the article behind each entry, a page URL that page (id: its canonical URL; "
        "robots.txt, timeouts and size limits honoured). Exit status 1 when some input failed; "
        "the rest is ingested all the same.",
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH|URL",
        help="files or folders (recursive), RSS/Atom feed URLs or page URLs",
    )
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
        description="Articles, chunks, embedding model, store and last ingestion. --verify "
        "checks that every chunk has its embedding and is found by it, that every article is "
        "complete and that the keyword index matches (exit 1 when not); --repair rewrites the "
        "damaged articles from their stored text.",
    )
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.add_argument("--verify", action="store_true", help="check the store's integrity")
    p.add_argument("--repair", action="store_true", help="check, and rewrite what is damaged")
    p.set_defaults(func=cmd_status)

    def filter_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--top-k", type=_top_k, metavar="N", help=top_k_help)
        p.add_argument("--source", metavar="S", help="only articles from this source")
        p.add_argument("--since", metavar="DATE", help="only articles dated on/after YYYY-MM-DD")
        p.add_argument("--until", metavar="DATE", help="only articles dated on/before YYYY-MM-DD")
        p.add_argument(
            "--as-of",
            metavar="DATE",
            help="the day the question is asked (default today): articles published after it "
            "are never used, and for questions about current events recent articles rank higher",
        )

    p = sub.add_parser(
        "ask",
        help="answer a question, with cited passages",
        description="Answer a question from the indexed articles. Every claim is cited [n] to "
        "the passage that supports it; when the articles do not hold the answer, it says so "
        "and shows the closest passages. QUESTION '-' reads one question a line from stdin "
        "(the model loads once).",
    )
    p.add_argument("question", metavar="QUESTION", help="the question, or - for stdin")
    p.add_argument(
        "--json",
        action="store_true",
        help="JSON: answer, short_answer (text, passage, doc_id, start, end, kind), refused, "
        "refusal_reason, as_of, citations (n, doc_id, title, source, url, date, text, start, "
        "end, score), corroboration (sources, citations: other outlets stating the short "
        "answer), conflicts (text, n, source: other values they give), timings, signals, "
        "log_id; one line per answer",
    )
    filter_args(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "chat",
        help="a terminal chat with follow-up questions",
        description="Ask questions in a conversation; follow-ups are rewritten "
        "into standalone questions before retrieval.",
    )
    filter_args(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser(
        "eval",
        help="score answers against gold Q&A",
        description="Run the gold questions through the engine and report retrieval (hit@k, "
        "MRR), answers (exact match, F1, containment), citations (precision, recall), refusals "
        "(precision, recall) and latency (p50, p95). The corpus is ingested into its own store.",
    )
    p.add_argument("--gold", type=Path, help="gold JSONL (default evals/gold.jsonl)")
    p.add_argument("--corpus", type=Path, help="articles to ask about (default corpus/)")
    p.add_argument("--top-k", type=_top_k, metavar="N", help=top_k_help)
    p.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    p.add_argument("--out", type=Path, help="report folder (default evals/reports)")
    p.add_argument(
        "--compare",
        type=Path,
        metavar="OLD_REPORT",
        help="show the changes against an earlier report (folder or report.json)",
    )
    p.add_argument(
        "--thresholds",
        type=Path,
        metavar="TOML",
        help="fail (exit 1) when a metric falls below its threshold",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "serve",
        help="start the browser chat UI",
        description="Start the chat UI (default http://127.0.0.1:7860). When the store is "
        "empty, the bundled corpus is ingested first. Login: RAG_UI_AUTH=user:password.",
    )
    p.add_argument("--host", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--corpus", help="what to ingest when the store is empty (default corpus/)")
    p.add_argument(
        "--watch",
        nargs="+",
        metavar="PATH|URL",
        help="also re-ingest these files, folders, feeds or pages on a schedule, inside the server",
    )
    p.add_argument(
        "--every",
        default="10m",
        help="how often to re-ingest --watch and the feeds added in the UI (10m)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "watch",
        help="re-ingest paths, feeds and pages on a schedule",
        description="Ingest the given files, folders, RSS/Atom feeds or pages now and then every "
        "--every: only new and changed articles cost work (feeds are fetched conditionally). "
        "One line per run says what changed. A failed run is logged and retried next time.",
    )
    p.add_argument(
        "sources", nargs="+", metavar="PATH|URL", help="files, folders, feed or page URLs"
    )
    p.add_argument("--every", default="10m", help="interval: 30s, 10m, 2h (default 10m)")
    p.add_argument("--runs", type=int, metavar="N", help="stop after N runs (default: never)")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser(
        "feeds",
        help="list, add or remove the feeds and pages `rag serve` watches",
        description="The feeds and pages kept in the data dir (also managed in the UI's Feeds "
        "tab): `rag serve` ingests each one every --every. Without a command, lists them "
        "with when each last ran and what it added.",
    )
    p.add_argument("--json", action="store_true", help="list as JSON")
    feeds_sub = p.add_subparsers(dest="feeds_cmd", metavar="{add,remove}")
    q = feeds_sub.add_parser("add", help="watch a feed or page URL")
    q.add_argument("url", metavar="URL")
    q = feeds_sub.add_parser("remove", help="stop watching a URL (its articles stay)")
    q.add_argument("url", metavar="URL")
    p.set_defaults(func=cmd_feeds)

    from rag.logs_cli import add_parsers

    add_parsers(sub)  # rag logs [show ID | export-gold FILE], rag feedback ID
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if args.verbose < 2:  # some libraries log at DEBUG on their own loggers
        for name in ("bm25s", "chromadb", "httpx"):
            logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from pydantic import ValidationError

    from rag.errors import RagError

    try:
        return int(args.func(args) or 0)
    except RagError as e:
        print(f"rag: {e}", file=sys.stderr)
        return e.exit_code
    except FileNotFoundError as e:
        print(f"rag: {e}", file=sys.stderr)
    except ValidationError as e:  # before ValueError: it is one
        print(f"rag: invalid setting: {e}", file=sys.stderr)
    except ValueError as e:
        print(f"rag: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("rag: interrupted; run the same command again to finish", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rag ... | head`: the reader has gone; exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 2


if __name__ == "__main__":
    sys.exit(main())
