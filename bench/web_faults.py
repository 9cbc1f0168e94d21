"""Web ingestion against hostile servers, all on 127.0.0.1: how long a trickling server holds a
read (against RAG_WEB_TIMEOUT), how much memory a compression bomb takes (against
RAG_WEB_MAX_PAGE_MB), how long one feed of never-ending pages holds a read, what an entity bomb
in a feed and a pile of stacked content encodings do, and how many stories `--prune` keeps after
a damaged feed.

    python -m bench.web_faults [--timeout 4] [--limit-mb 5] [--bomb-mb 200] [--skip-prune]

Each fetch case runs in a child process of its own, so its peak RSS is its own. The prune cases
ingest 10 invented stories with the bundled embedding model, then read the feed truncated, as a
200 maintenance page, and shortened to 3 entries, each with `--prune`.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import report_path, table

TRICKLE_SECONDS = 60.0  # a trickle longer than this counts as never ending
DRIP_EVERY = 0.1  # one byte per this many seconds: far inside any per-read timeout


def _bomb(encoding: str, mb: int) -> bytes:
    block = b"\0" * 1_000_000
    if encoding == "br":
        import brotli

        c = brotli.Compressor(quality=5)
        return b"".join(c.process(block) for _ in range(mb)) + c.finish()
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    return b"".join(z.compress(block) for _ in range(mb)) + z.flush()


class _Server:
    """Routes on 127.0.0.1: path -> handler(request); `bodies` for plain 200 answers."""

    def __init__(self) -> None:
        self.bodies: dict[str, tuple[bytes, str, dict[str, str]]] = {}
        self.handlers: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path in server.handlers:
                    return server.handlers[self.path](self)
                body, ctype, headers = server.bodies.get(self.path, (b"", "", {}))
                self.send_response(200 if ctype else 404)
                self.send_header("Content-Type", ctype or "text/plain")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _trickle(head: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
    def handler(h: BaseHTTPRequestHandler) -> None:
        try:
            h.wfile.write(head)
            h.wfile.flush()
            stop = time.monotonic() + TRICKLE_SECONDS
            while time.monotonic() < stop:
                h.wfile.write(b"a")
                h.wfile.flush()
                time.sleep(DRIP_EVERY)
        except OSError:  # the reader hung up
            pass
        h.close_connection = True

    return handler


CASES = {
    "trickled body": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>",
    "trickled headers": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Slow: ",
}
# A feed of this many entries whose pages trickle forever, read at FEED_TIMEOUT: without an
# overall budget it holds the read FEED_ENTRIES x FEED_TIMEOUT seconds.
FEED_ENTRIES = 200
FEED_TIMEOUT = 0.25
OTHER_CASES = ["feed entry budget", "entity bomb", "stacked encodings", "empty-block bomb"]


def _entity_bomb(limit_mb: float) -> bytes:
    """A feed under the size limit whose one entity, used ~300 000 times a MB, expands ~90x
    inside expat's own amplification allowance."""
    refs = "&b;" * int(min(limit_mb, 1.0) * 1_000_000 / 3)
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY b "{"y" * 280}">]><rss version="2.0">'
        f"<channel><title>t</title><item><title>{refs}</title><link>/s</link></item>"
        "</channel></rss>"
    ).encode()


def _empty_blocks(mb: int) -> bytes:
    """gzip(a gzip stream of empty stored deflate blocks): the last layer decodes to nothing."""
    block = b"\x00\x00\x00\xff\xff" * 200_000
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [z.compress(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")]
    return b"".join(out + [z.compress(block) for _ in range(mb)]) + z.flush()


def _serve_case(server: _Server, case: str, limit_mb: float, bomb_mb: int) -> None:
    if case in CASES:
        server.handlers["/case"] = _trickle(CASES[case])
    elif case == "feed entry budget":
        links = [f"{server.base}/slow/{i}" for i in range(FEED_ENTRIES)]
        server.bodies["/case"] = (_rss(links), "application/rss+xml", {})
        for link in links:
            server.handlers[link[len(server.base) :]] = _trickle(CASES["trickled body"])
    elif case == "entity bomb":
        server.bodies["/case"] = (_entity_bomb(limit_mb), "application/rss+xml", {})
    elif case == "stacked encodings":
        html = b"<html><body><p>" + b"Varnholt harbour news. " * 20 + b"</p></body></html>"
        for _ in range(1500):
            html = zlib.compress(html, 1)
        headers = {"Content-Encoding": ", ".join(["deflate"] * 1500)}
        server.bodies["/case"] = (html, "text/html", headers)
    elif case == "empty-block bomb":
        body = _empty_blocks(bomb_mb)
        server.bodies["/case"] = (body, "text/html", {"Content-Encoding": "gzip, gzip"})
    else:
        encoding = case.split()[0]
        body = _bomb(encoding, bomb_mb)
        server.bodies["/case"] = (body, "text/html", {"Content-Encoding": encoding})


def run_case(case: str, timeout: float, limit_mb: float, bomb_mb: int) -> dict:
    """One fetch against a fresh server, in this process: seconds, peak memory, the error."""
    from rag.config import Settings
    from rag.web import WebReader

    server = _Server()
    _serve_case(server, case, limit_mb, bomb_mb)
    if case == "feed entry budget":
        timeout = FEED_TIMEOUT
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp()),
        web_timeout=timeout,
        web_max_page_mb=limit_mb,
        web_host_delay=0.0,
        web_respect_robots=False,
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.monotonic()
    try:
        items: list = list(WebReader(settings).read([server.base + "/case"]))
    except Exception as e:  # the whole run ended: what the review found
        items = [f"RUN ENDED: {type(e).__name__}: {str(e)[:80]}"]
    seconds = time.monotonic() - started
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    server.close()
    return {
        "case": case,
        "seconds": round(seconds, 2),
        "timeout_s": timeout,
        "limit_mb": limit_mb,
        "peak_traced_mb": round(traced / 1e6, 1),
        "peak_rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
        "result": _result(items),
    }


def _result(items: list) -> str:
    if not items:
        return "nothing"
    if isinstance(items[0], str):
        return items[0]
    errors = [i for i in items if hasattr(i, "reason")]
    if len(items) == 1:
        first = items[0]
        if hasattr(first, "reason"):
            return str(first.reason)
        return f"an article, title {len(first.title)} chars"
    return f"{len(items) - len(errors)} articles, {len(errors)} errors; last: " + (
        str(errors[-1].reason) if errors else ""
    )


def _stories(server: _Server, n: int) -> list[str]:
    urls = []
    for i in range(n):
        html = (
            f"<html><head><title>Varnholt ferry notice {i}</title></head><body><article>"
            f"<h1>Varnholt ferry notice {i}</h1><p>The ferry between Varnholt and Oskel will "
            f"run {i + 2} extra crossings this week, the harbour office said on Monday, after "
            f"repairs to pier {i + 1} finished early.</p></article></body></html>"
        )
        server.bodies[f"/news/ferry-{i}.html"] = (html.encode(), "text/html", {})
        urls.append(f"{server.base}/news/ferry-{i}.html")
    return urls


def _rss(urls: list[str]) -> bytes:
    items = "".join(
        f"<item><title>t{i}</title><link>{u}</link></item>\n" for i, u in enumerate(urls)
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    return f"{head}\n{items}</channel></rss>".encode()


def run_prune() -> list[dict]:
    """10 stories ingested from a feed, then the feed damaged three ways, each with --prune."""
    from rag.config import Settings
    from rag.embeddings import LOCAL_DIM, LOCAL_MODEL_NAME, OnnxMiniLMEmbedding
    from rag.ingest import Ingestor
    from rag.store import open_store

    server = _Server()
    urls = _stories(server, 10)
    full = _rss(urls)
    rss = "application/rss+xml"
    maintenance = (
        b"<html><head><title>We'll be back soon</title></head><body><article><h1>We'll be "
        b"back soon</h1><p>" + b"Our site is down for planned maintenance tonight. " * 5
    ) + b"</p></article></body></html>"
    steps = [
        ("clean feed, 10 entries", full, rss),
        ("the same feed labelled text/plain", full, "text/plain"),
        ("feed cut after 5 of 10 entries", full[: full.index(b"<item><title>t5<")], rss),
        ("200 maintenance page", maintenance, "text/html"),
        ("valid feed, 3 of the 10 entries", _rss(urls[:3]), rss),
        ("maintenance page, HTTP cache deleted", maintenance, "text/html"),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", web_host_delay=0.0)
        store = open_store(settings, LOCAL_MODEL_NAME, LOCAL_DIM)
        ingestor = Ingestor(settings, store, OnnxMiniLMEmbedding())
        feed = server.base + "/feed.xml"
        for name, body, ctype in steps:
            if "cache deleted" in name:
                shutil.rmtree(settings.data_dir / "web", ignore_errors=True)
            server.bodies["/feed.xml"] = (body, ctype, {})
            report = ingestor.run([feed], prune=True, progress=False)
            rows.append(
                {
                    "step": name,
                    "exit": 0 if report.ok else 1,
                    "removed": report.articles.removed,
                    "stories_kept": len(store.indexed()),
                    "note": (report.errors[0].reason if report.errors else "")
                    or (report.warnings[0] if report.warnings else ""),
                }
            )
    server.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=4.0, help="RAG_WEB_TIMEOUT for the cases")
    ap.add_argument("--limit-mb", type=float, default=5.0, help="RAG_WEB_MAX_PAGE_MB")
    ap.add_argument("--bomb-mb", type=int, default=200, help="what each bomb expands to")
    ap.add_argument("--skip-prune", action="store_true")
    ap.add_argument("--case", help=argparse.SUPPRESS)  # one case, run in a child process
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.timeout, args.limit_mb, args.bomb_mb)))
        return

    import rag.web

    # Before this release httpx chose the encodings (gzip, deflate, br with brotli installed).
    accepted = getattr(rag.web, "ACCEPTED", "gzip, deflate, br")
    cases = [*CASES, "gzip bomb"] + (["br bomb"] if "br" in accepted else []) + OTHER_CASES
    results = []
    for case in cases:
        cmd = [sys.executable, "-m", "bench.web_faults", "--case", case]
        cmd += ["--timeout", str(args.timeout), "--limit-mb", str(args.limit_mb)]
        cmd += ["--bomb-mb", str(args.bomb_mb)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(
        table(
            ["case", "s to fail", "timeout s", "traced MB", "RSS growth MB", "limit MB"],
            [
                [
                    r["case"],
                    r["seconds"],
                    r["timeout_s"],
                    r["peak_traced_mb"],
                    r["peak_rss_growth_mb"],
                    r["limit_mb"],
                ]
                for r in results
            ],
        )
    )
    for r in results:
        print(f"  {r['case']}: {r['result'][:110]}")
    prune = [] if args.skip_prune else run_prune()
    if prune:
        print()
        print(
            table(
                ["--prune after", "exit", "removed", "stories kept"],
                [[p["step"], p["exit"], p["removed"], p["stories_kept"]] for p in prune],
            )
        )
    data = {
        "settings": {
            "timeout_s": args.timeout,
            "limit_mb": args.limit_mb,
            "bomb_mb": args.bomb_mb,
            "drip_every_s": DRIP_EVERY,
            "trickle_cap_s": TRICKLE_SECONDS,
            "accept_encoding": accepted,
            "feed_entries": FEED_ENTRIES,
            "feed_timeout_s": FEED_TIMEOUT,
        },
        "fetch": results,
        "prune": prune,
    }
    print(f"\nreport: {report_path('web_faults', data)}")


if __name__ == "__main__":
    main()
