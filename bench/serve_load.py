"""`rag serve` under use: peak memory after ingesting the bundled corpus and answering 20
questions, then 8 simulated users asking through the UI's API (gradio_client) for 60 s.
Only 127.0.0.1 is targeted; request count and duration are bounded.

    python -m bench.serve_load [--users 8] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import ROOT, pct, report_path, table
from tests.conftest import free_port, running_server


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--timeout", type=float, default=180, help="seconds one request may take")
    args = ap.parse_args()
    from gradio_client import Client

    questions = [
        json.loads(x)["question"] for x in (ROOT / "evals" / "gold.jsonl").read_text().splitlines()
    ]
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RAG_DATA_DIR": tmp}
        cmd = [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)]
        with running_server(cmd, url, Path(tmp), seconds=300, env=env, cwd=ROOT) as proc:
            client = Client(url, verbose=False)
            seq = []
            for q in questions[:20]:
                t = time.perf_counter()
                client.predict(q, [], "", "", "", 6, api_name="/ask")
                seq.append(time.perf_counter() - t)
            rss_after_20 = peak_rss_mb(proc.pid)

            lat: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            stop_at = time.time() + args.seconds

            def user(i: int) -> None:
                c = Client(url, verbose=False)
                n = i
                while time.time() < stop_at:
                    q = questions[n % len(questions)]
                    n += args.users
                    t = time.perf_counter()
                    try:
                        c.submit(q, [], "", "", "", 6, api_name="/ask").result(timeout=args.timeout)
                        with lock:
                            lat.append(time.perf_counter() - t)
                    except Exception as e:  # counted, never hidden
                        with lock:
                            errors.append(f"{type(e).__name__}: {e}"[:200])

            threads = [threading.Thread(target=user, args=(i,)) for i in range(args.users)]
            started = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join(args.seconds + args.timeout + 30)
            wall = time.perf_counter() - started
            rss_peak = peak_rss_mb(proc.pid)

    result = {
        "sequential_20": {"p50_s": pct(seq, 50), "p95_s": pct(seq, 95)},
        "peak_rss_mb_after_20_questions": round(rss_after_20, 1),
        "peak_rss_mb_after_load": round(rss_peak, 1),
        "load": {
            "users": args.users,
            "seconds": args.seconds,
            "completed": len(lat),
            "throughput_per_min": round(len(lat) / wall * 60, 1),
            "p50_s": pct(lat, 50),
            "p95_s": pct(lat, 95),
            "max_s": round(max(lat), 2) if lat else None,
            "errors": len(errors),
            "error_samples": errors[:5],
        },
    }
    print(
        table(
            ["measure", "value"],
            [
                ["peak RSS after 20 questions (MB)", result["peak_rss_mb_after_20_questions"]],
                ["sequential answer p50 (s)", result["sequential_20"]["p50_s"]],
                [f"{args.users} users: answers/min", result["load"]["throughput_per_min"]],
                [f"{args.users} users: p95 latency (s)", result["load"]["p95_s"]],
                [f"{args.users} users: errors", result["load"]["errors"]],
            ],
        )
    )
    print(f"report: {report_path('serve', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
