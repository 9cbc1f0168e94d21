"""Shared helpers for the benchmarks: where data is, tables, JSON reports."""

from __future__ import annotations

import json
import platform
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REALTIMEQA = ROOT.parent / "shared" / "data" / "realtimeqa"
REPORTS = ROOT / "bench" / "reports"


def machine() -> dict:
    import os

    mem = 0
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) // 1024
    except OSError:
        pass
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mb": mem,
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def pct(values, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 4) if len(values) else None


def table(header: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in header]] + [
        [f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report_path(name: str, data: dict) -> Path:
    REPORTS.mkdir(parents=True, exist_ok=True)
    path = REPORTS / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2))
    return path


def dev_questions() -> list[dict]:
    """RealTime QA dev's items (question, answers, evidence_doc_ids, question_date, ...)."""
    return [json.loads(x) for x in (REALTIMEQA / "qa_dev.jsonl").read_text().splitlines() if x]
