"""`rag logs` and `rag feedback`: find logged answers again, and correct them into gold questions.

`rag.cli.build_parser` calls `add_parsers(sub)`; every command takes the parsed arguments,
prints, and returns the exit status (errors raise `RagError`, which `rag.cli.main` prints).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.answer_log import AnswerLog, unknown_entry
from rag.errors import InvalidInput

LINE_CHARS = 70  # question and answer are cut to this in the list


def _log(args: argparse.Namespace) -> AnswerLog:
    from rag.cli import _settings

    return AnswerLog.from_settings(_settings(args))


def _one_line(text: str | None, limit: int = LINE_CHARS) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _verdict(entry: dict) -> str:
    fb = entry["feedback"]
    if fb is None:
        return ""
    return fb["verdict"] + (f": {fb['answer']}" if fb["answer"] else "")


def cmd_logs(args: argparse.Namespace) -> int:
    """`rag logs`: the newest answers, one line each (or one JSON object a line)."""
    entries = _log(args).recent(args.n, search=args.search)
    if args.json:
        for entry in entries:
            print(json.dumps(entry, ensure_ascii=False))
        return 0
    if not entries:
        print("No logged answer matches." if args.search else "No answers logged yet.")
        return 0
    for e in entries:
        said = "(refused)" if e["refused"] else e["short_answer"] or e["answer"]
        verdict = _verdict(e)
        print(
            f"#{e['id']}  {e['time']}  {_one_line(e['question'])}\n"
            f"      → {_one_line(said)}" + (f"  [{_one_line(verdict, 40)}]" if verdict else "")
        )
    return 0


def cmd_logs_show(args: argparse.Namespace) -> int:
    """`rag logs show ID`: everything logged about one answer."""
    entry = _log(args).get(args.id)
    if entry is None:
        raise unknown_entry(args.id)
    if args.json:
        print(json.dumps(entry, ensure_ascii=False, indent=2))
        return 0
    print(f"Answer #{entry['id']}, {entry['time']}")
    print(f"Question:   {entry['question']}")
    if entry["standalone_question"] and entry["standalone_question"] != entry["question"]:
        print(f"Searched:   {entry['standalone_question']}")
    print(f"As of:      {entry['as_of'] or 'not recorded'}")
    if entry["filters"]:
        print("Filters:    " + ", ".join(f"{k}={v}" for k, v in entry["filters"].items()))
    if entry["refused"]:
        print(f"Refused:    {entry['refusal_reason'] or 'yes'}")
    else:
        print(f"Short:      {entry['short_answer'] or '(none)'}")
    print(f"Model:      {entry['model'] or 'not recorded'}")
    store = " ".join(
        x for x in (entry["store"], entry["collection"] and f"({entry['collection']})") if x
    )
    print(f"Store:      {store or 'not recorded'}")
    total = entry["timings"].get("total")
    if total is not None:
        print(f"Took:       {total:.2f} s")
    if entry["feedback"]:
        fb = entry["feedback"]
        print(f"Feedback:   {_verdict(entry)} ({fb['time']})")
    for field, length in entry["truncated"].items():
        print(f"Note:       {field} was {length:,} characters; the start is kept")
    print(f"\n{entry['answer']}")
    if entry["citations"]:
        print("\nClosest passages:" if entry["refused"] else "\nSources:")
        for c in entry["citations"]:
            where = f"{c['doc_id']}, chars {c['start']}-{c['end']}"
            print(f"  [{c['n']}] {c['title'] or c['doc_id']} ({where})")
            print(f"      “{_one_line(c['text'], 300)}”")
    return 0


def cmd_logs_export_gold(args: argparse.Namespace) -> int:
    """`rag logs export-gold FILE`: the judged answers as a gold file for `rag eval --gold`."""
    report = _log(args).export_gold(args.file)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
        return 0
    print(
        f"Wrote {report.written} gold question(s) to {report.path} "
        f"({report.unanswerable} unanswerable). Score them: rag eval --gold {report.path}"
    )
    for why, count in report.skipped.items():
        print(f"  left out {count}: {why}", file=sys.stderr)
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    """`rag feedback ID --right | --wrong [--answer TEXT]`."""
    if args.right and args.answer:
        raise InvalidInput("--answer goes with --wrong (the correct answer to a wrong one)")
    entry = _log(args).feedback(args.id, right=args.right, answer=args.answer)
    if args.json:
        print(json.dumps(entry, ensure_ascii=False))
        return 0
    print(f"Answer #{entry['id']} marked {_verdict(entry)}.")
    print("`rag logs export-gold FILE` turns the marked answers into gold questions.")
    return 0


def _entry_id(text: str) -> int:
    try:
        value = int(text.lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an answer id; `rag logs` lists them"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"answer ids start at 1, not {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of answers (1 or more), not {text!r}")
    return value


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add `logs` (with `show` and `export-gold`) and `feedback` to the `rag` subcommands."""
    p = sub.add_parser(
        "logs",
        help="list the answers given, newest first",
        description="Every answer (CLI, API, UI) is logged in the data dir "
        "(answers.sqlite3; RAG_LOG=false turns logging off). Lists the newest, one per two "
        "lines: id, time (UTC), question, and the short answer with any feedback. `rag logs "
        "show ID` shows one in full; `rag logs export-gold FILE` writes the ones marked "
        "right or wrong as a gold file for `rag eval --gold FILE`.",
    )
    p.add_argument(
        "-n", type=_positive, default=10, metavar="N", help="how many answers (default 10)"
    )
    p.add_argument(
        "--search",
        metavar="TEXT",
        help="only answers whose question, answer or correction contains TEXT (any case)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per answer, a line each: id, time, question, as_of, filters, "
        "short_answer, answer, refused, refusal_reason, citations (n, doc_id, title, source, "
        "url, date, start, end, text), signals, timings, model, store, collection, truncated, "
        "extra (newer answer fields), feedback (verdict, answer, time)",
    )
    p.set_defaults(func=cmd_logs)
    logs = p.add_subparsers(dest="logs_command", metavar="[show ID | export-gold FILE]")

    q = logs.add_parser(
        "show",
        help="one logged answer in full",
        description="Everything logged about one answer: question, filters, answer, "
        "citations with their spans, model, store, timings and feedback.",
    )
    q.add_argument("id", type=_entry_id, metavar="ID", help="its id, from `rag logs`")
    q.add_argument("--json", action="store_true", help="print it as JSON")
    q.set_defaults(func=cmd_logs_show)

    q = logs.add_parser(
        "export-gold",
        help="write the answers marked right or wrong as a gold file",
        description="Write the answers marked with `rag feedback` as gold JSONL for `rag eval "
        "--gold FILE`: question, answers (the confirmed short answer or the correction), "
        "evidence_doc_ids (cited articles holding the answer), question_date (the as-of day). "
        "A refusal marked right and a wrong answer with no correction become unanswerable "
        "items. Exit status 2 when no answer has been marked yet.",
    )
    q.add_argument("file", type=Path, metavar="FILE", help="the gold JSONL to write")
    q.add_argument("--json", action="store_true", help="print a JSON summary")
    q.set_defaults(func=cmd_logs_export_gold)

    p = sub.add_parser(
        "feedback",
        help="mark a logged answer right or wrong",
        description="Say whether a logged answer (id from `rag logs`) was right; with --wrong, "
        "--answer gives the correct one. Marking again replaces the earlier verdict. Marked "
        "answers become gold questions with `rag logs export-gold FILE`.",
    )
    p.add_argument("id", type=_entry_id, metavar="ID", help="the answer's id, from `rag logs`")
    verdict = p.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--right", action="store_true", help="the answer was right")
    verdict.add_argument("--wrong", action="store_true", help="the answer was wrong")
    p.add_argument(
        "--answer",
        metavar="TEXT",
        help="with --wrong: the correct answer (leave out when the articles do not hold one)",
    )
    p.add_argument("--json", action="store_true", help="print the updated entry as JSON")
    p.set_defaults(func=cmd_feedback)
