"""rag.web against a real HTTP server on 127.0.0.1, with real feedparser and trafilatura."""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rag.articles import Article, ReadError
from rag.web import WebReader, canonical_url, decode_html, is_url
from tests.conftest import free_port

FIXTURES = Path(__file__).parent / "web_fixtures"
FAST = {"web_timeout": 0.5, "web_host_delay": 0.0}  # every test stays well under a second a URL
PUBLISHED = email.utils.formatdate(1_900_000_000, usegmt=True)  # a fixed Last-Modified


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    validators: bool = True  # send ETag and Last-Modified, answer 304 when they match
    handler: Callable[[BaseHTTPRequestHandler], None] | None = None


class Site:
    """Routes by path; counts requests and their status, and notes when each arrived."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.statuses: list[tuple[str, int]] = []
        self.arrivals: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str = b"", **kw) -> str:
        if isinstance(body, str):
            body = body.replace("BASE", self.base).encode()
        self.routes[path] = Route(body=body, **kw)
        return self.url(path)

    def fixture(self, path: str, name: str, **kw) -> str:
        return self.add(path, (FIXTURES / name).read_text(encoding="utf-8"), **kw)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.add(path, status=status, headers={"Location": location}, validators=False)

    def page_requests(self) -> int:
        return sum(n for p, n in self.hits.items() if p.startswith("/news/"))


def _handler_for(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            with site.lock:
                site.hits[path] += 1
                site.arrivals.append((path, time.monotonic()))
            route = site.routes.get(self.path) or site.routes.get(path)
            if route is None:
                return self._send(404, b"not found", "text/plain")
            if route.handler is not None:
                return route.handler(self)
            headers = dict(route.headers)
            if route.validators and route.status == 200:
                etag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
                headers |= {"ETag": etag, "Last-Modified": PUBLISHED}
                if self.headers.get("If-None-Match") == etag or (
                    self.headers.get("If-Modified-Since") == PUBLISHED
                    and "If-None-Match" not in self.headers
                ):
                    return self._send(304, b"", None, headers)
            self._send(route.status, route.body, route.content_type, headers)

        def _send(self, status: int, body: bytes, ctype: str | None, headers=None) -> None:
            with site.lock:
                site.statuses.append((self.path.split("?", 1)[0], status))
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # keep pytest's output quiet
            pass

    return Handler


@pytest.fixture
def site() -> Iterator[Site]:
    port = free_port()
    s = Site(port)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(s))
    server.daemon_threads = True  # a handler still sleeping must not hold the test up
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield s
    finally:
        server.shutdown()
        server.server_close()


def reader(settings, tmp_path: Path, **overrides) -> WebReader:
    return WebReader(settings.model_copy(update=FAST | overrides), cache_dir=tmp_path / "web")


def split(items) -> tuple[list[Article], list[ReadError]]:
    items = list(items)
    return [i for i in items if isinstance(i, Article)], [
        i for i in items if isinstance(i, ReadError)
    ]


def add_news(site: Site) -> None:
    site.fixture("/news/harbour.html", "harbour.html")
    site.fixture("/news/amp/harbour.html", "harbour_amp.html")
    site.fixture("/news/bridge.html", "bridge.html")
    site.fixture("/news/library.html", "library.html")


# ---- URLs


def test_is_url_and_canonical_form():
    assert is_url("https://example.org/a") and is_url("ftp://x/y") and is_url(" http://x ")
    assert not is_url("corpus/") and not is_url("notes.md") and not is_url("C:\\news")
    assert (
        canonical_url("HTTPS://WWW.Example.ORG:443/a/b?utm_source=x&b=2&a=1&fbclid=z#part")
        == "https://www.example.org/a/b?a=1&b=2"
    )
    assert canonical_url("http://example.org") == "http://example.org/"
    assert canonical_url("http://example.org:8080/x") == "http://example.org:8080/x"


# ---- feeds


def test_rss_feed_yields_each_entry_article(site, settings, tmp_path):
    add_news(site)
    feed = site.fixture("/feed.xml", "feed.rss", content_type="application/rss+xml")
    articles, errors = split(reader(settings, tmp_path).read([feed]))
    assert errors == []
    by_title = {a.title: a for a in articles}
    assert set(by_title) == {
        "Harbour reopens after storm repairs",
        "Council approves new footbridge over the Lenn",
    }
    harbour = by_title["Harbour reopens after storm repairs"]
    assert harbour.id == harbour.url == site.url("/news/harbour.html")
    assert harbour.date == "2024-03-04"
    assert harbour.source == "127.0.0.1"
    assert harbour.path == feed  # pruning by source keeps what the feed lists
    assert harbour.authors == ["Mara Quill"]
    assert "breakwater" in harbour.text and "Home" not in harbour.text
    bridge = by_title["Council approves new footbridge over the Lenn"]
    assert bridge.url == site.url("/news/bridge.html")  # tracking parameters dropped
    assert bridge.date == "2024-03-05"


def test_atom_feed_with_relative_links_and_authors(site, settings, tmp_path):
    add_news(site)
    # Served as plain XML: the content decides that it is a feed.
    feed = site.fixture("/feeds/town.atom", "feed.atom", content_type="application/xml")
    articles, errors = split(reader(settings, tmp_path).read([feed]))
    assert errors == []
    library = next(a for a in articles if "Sundays" in a.title)
    assert library.url == site.url("/news/library.html")
    assert library.date == "2024-03-06"
    assert library.authors == ["Petra Oyelaran"]
    # The AMP copy names the main page as canonical: that is its id.
    amp = next(a for a in articles if "Harbour" in a.title)
    assert amp.id == site.url("/news/harbour.html")


def test_malformed_feed_is_reported(site, settings, tmp_path):
    feed = site.fixture("/broken.xml", "broken.rss", content_type="application/rss+xml")
    articles, errors = split(reader(settings, tmp_path).read([feed]))
    assert articles == []
    assert len(errors) == 1 and errors[0].path == feed
    assert "not a valid RSS or Atom feed" in errors[0].reason


def test_failed_entry_is_reported_under_its_feed_and_the_rest_goes_on(site, settings, tmp_path):
    add_news(site)
    del site.routes["/news/bridge.html"]  # a 404
    feed = site.fixture("/feed.xml", "feed.rss", content_type="application/rss+xml")
    articles, errors = split(reader(settings, tmp_path).read([feed]))
    assert [a.title for a in articles] == ["Harbour reopens after storm repairs"]
    assert len(errors) == 1 and errors[0].path == feed
    assert "bridge.html" in errors[0].reason and "404" in errors[0].reason


def test_feed_links_with_other_schemes_are_refused(site, settings, tmp_path):
    add_news(site)
    feed = site.add(
        "/feed.xml",
        """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
        <item><title>a</title><link>file:///etc/passwd</link></item>
        <item><title>b</title><link>BASE/news/library.html</link></item>
        </channel></rss>""",
        content_type="application/rss+xml",
    )
    articles, errors = split(reader(settings, tmp_path).read([feed]))
    assert [a.url for a in articles] == [site.url("/news/library.html")]
    assert len(errors) == 1 and "only http(s)" in errors[0].reason


def test_private_addresses_are_recognised():
    from rag.web import private_address

    for url in [
        "http://127.0.0.1/a",
        "http://localhost:8080/",
        "http://10.1.2.3/",
        "http://192.168.0.9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:80/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ]:
        assert private_address(url) is not None, url
    assert private_address("http://93.184.216.34/") is None
    assert private_address("http://[2606:4700::1111]/") is None
    assert private_address("http://no-such-host.invalid/") is None  # the fetch reports it


def test_a_name_is_local_only_when_every_address_is(monkeypatch):
    import socket

    from rag.web import is_local

    assert is_local("http://127.0.0.1:8080/feed.xml") and is_local("http://localhost/")
    assert not is_local("http://93.184.216.34/") and not is_local("http://no-such.invalid/")
    real = socket.getaddrinfo

    def two_records(host, *a, **kw):  # a public and a private record for one name
        if host != "mixed.example":
            return real(host, *a, **kw)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 0))
            for ip in ("93.184.216.34", "127.0.0.2")
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two_records)
    assert not is_local("http://mixed.example/feed.xml")


def test_robots_txt_redirects_cannot_lead_into_the_local_network(
    site, settings, tmp_path, monkeypatch
):
    page = site.fixture("/news/library.html", "library.html")
    site.redirect("/robots.txt", site.url("/private/robots.txt").replace("127.0.0.1", "localhost"))
    site.add("/private/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    feed = site.add(
        "/feed.xml",
        f"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
        <item><title>a</title><link>{page}</link></item></channel></rss>""",
        content_type="application/rss+xml",
    )
    _as_public(monkeypatch)
    articles, errors = split(reader(settings, tmp_path, web_respect_robots=True).read([feed]))
    assert site.hits["/private/robots.txt"] == 0
    assert articles == [] and errors and "local or private address" in errors[0].reason


def _as_public(monkeypatch, host: str = "127.0.0.1") -> None:
    """Make `host` count as a public address: the test's server is on loopback, and a test
    cannot reach a real public host here. Every other name is classified for real."""
    import rag.web

    real, real_local = rag.web.private_address, rag.web.is_local
    monkeypatch.setattr(
        rag.web, "private_address", lambda url: None if f"//{host}:" in url else real(url)
    )
    monkeypatch.setattr(
        rag.web, "is_local", lambda url: False if f"//{host}:" in url else real_local(url)
    )


def test_a_public_feed_cannot_lead_into_the_local_network(site, settings, tmp_path, monkeypatch):
    add_news(site)
    # Another loopback address with nothing listening: private, and it never answers.
    unanswered = f"http://127.0.0.9:{free_port()}/latest/meta-data/"
    local = site.url("/news/library.html").replace("127.0.0.1", "localhost")
    feed = site.add(
        "/feed.xml",
        f"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
        <item><title>a</title><link>{local}</link></item>
        <item><title>b</title><link>{unanswered}</link></item>
        <item><title>c</title><link>BASE/r-local</link></item>
        <item><title>d</title><link>BASE/news/bridge.html</link></item>
        </channel></rss>""",
        content_type="application/rss+xml",
    )
    site.redirect("/r-local", site.url("/news/harbour.html").replace("127.0.0.1", "localhost"))
    _as_public(monkeypatch)
    articles, errors = split(reader(settings, tmp_path).read([feed]))
    assert [a.url for a in articles] == [site.url("/news/bridge.html")]
    assert len(errors) == 3 and all(e.path == feed for e in errors)
    assert all("local or private address" in e.reason for e in errors)
    assert "RAG_WEB_ALLOW_PRIVATE" in errors[0].reason
    assert site.hits["/news/library.html"] == 0 and site.hits["/news/harbour.html"] == 0
    # A URL the user gives may be local, and the setting lets a trusted feed lead there.
    articles, errors = split(reader(settings, tmp_path / "b").read([local]))
    assert errors == [] and len(articles) == 1
    trusting = reader(settings, tmp_path / "c", web_allow_private=True, web_timeout=2)
    articles, errors = split(trusting.read([feed]))
    assert len(articles) == 3 and len(errors) == 1  # only the unanswered address fails


# ---- pages and their failures


def test_page_url_and_non_http_urls(site, settings, tmp_path):
    page = site.fixture("/news/bridge.html", "bridge.html")
    articles, errors = split(
        reader(settings, tmp_path).read([page, "file:///etc/passwd", "ftp://x.org/a"])
    )
    assert [a.title for a in articles] == ["Council approves new footbridge over the Lenn"]
    assert articles[0].path == page and articles[0].date == "2024-03-05"
    assert [e.path for e in errors] == ["file:///etc/passwd", "ftp://x.org/a"]
    assert all("only http(s) URLs are read" in e.reason for e in errors)
    assert site.hits["/etc/passwd"] == 0


def test_redirects_within_the_limit_are_followed(site, settings, tmp_path):
    add_news(site)
    site.redirect("/r1", "/r2", 301)
    site.redirect("/r2", site.url("/news/library.html"), 307)
    articles, errors = split(
        reader(settings, tmp_path, web_max_redirects=2).read([site.url("/r1")])
    )
    assert errors == []
    assert articles[0].url == site.url("/news/library.html")
    assert articles[0].path == site.url("/r1")
    # A redirect that only drops tracking parameters is no loop.
    tagged = site.redirect("/news/library.html?utm_source=feed", "/news/library.html")
    articles, errors = split(reader(settings, tmp_path / "b").read([tagged]))
    assert errors == [] and articles[0].url == site.url("/news/library.html")


def test_too_many_redirects_and_loops_are_refused(site, settings, tmp_path):
    add_news(site)
    site.redirect("/r1", "/r2")
    site.redirect("/r2", "/news/library.html")
    site.redirect("/loop-a", "/loop-b")
    site.redirect("/loop-b", "/loop-a")
    wr = reader(settings, tmp_path, web_max_redirects=1)
    articles, errors = split(wr.read([site.url("/r1"), site.url("/loop-a")]))
    assert articles == []
    assert "more than 1 redirects" in errors[0].reason
    assert site.hits["/news/library.html"] == 0
    # With room for more redirects, the loop is still caught, and reported as one.
    articles, errors = split(
        reader(settings, tmp_path, web_max_redirects=10).read([site.url("/loop-a")])
    )
    assert len(errors) == 1 and "redirect loop" in errors[0].reason
    assert site.hits["/loop-a"] <= 3


def test_redirect_to_another_scheme_is_refused(site, settings, tmp_path):
    site.redirect("/away", "file:///etc/passwd")
    site.redirect("/js", "javascript:alert(1)")
    articles, errors = split(reader(settings, tmp_path).read([site.url("/away"), site.url("/js")]))
    assert articles == []
    assert len(errors) == 2
    assert all("only http(s) redirects are followed" in e.reason for e in errors)
    assert "file:///etc/passwd" in errors[0].reason


def test_slow_page_times_out_and_the_rest_goes_on(site, settings, tmp_path):
    add_news(site)

    def slow(h: BaseHTTPRequestHandler) -> None:
        time.sleep(2)  # four times the test timeout

    site.add("/slow.html", handler=slow)
    started = time.monotonic()
    articles, errors = split(
        reader(settings, tmp_path).read([site.url("/slow.html"), site.url("/news/library.html")])
    )
    assert time.monotonic() - started < 1.8
    assert len(articles) == 1
    assert errors[0].path == site.url("/slow.html") and "within 0.5 s" in errors[0].reason


def test_dripping_page_hits_the_overall_deadline(site, settings, tmp_path):
    def drip(h: BaseHTTPRequestHandler) -> None:
        # Each byte comes before the per-read timeout would fire; only a deadline stops it.
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.end_headers()
        try:
            for _ in range(20):
                h.wfile.write(b"<p>" + b"x" * 70_000)
                h.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    site.add("/drip.html", handler=drip)
    started = time.monotonic()
    articles, errors = split(reader(settings, tmp_path).read([site.url("/drip.html")]))
    assert time.monotonic() - started < 1.5
    assert articles == [] and "within 0.5 s" in errors[0].reason


def test_huge_page_is_refused_while_streaming(site, settings, tmp_path):
    sent = Counter()

    def endless(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/html; charset=utf-8")
        h.end_headers()  # no Content-Length: only reading tells the size
        block = b"<p>" + b"news " * 20_000 + b"</p>\n"
        try:
            while sent["bytes"] < 200_000_000:
                h.wfile.write(block)
                sent["bytes"] += len(block)
        except OSError:  # the reader hung up: what this test wants
            pass

    site.add("/huge.html", handler=endless)
    site.add("/declared.html", b"x" * 3_000_000)  # refused on its Content-Length
    tracemalloc.start()
    try:
        articles, errors = split(
            reader(settings, tmp_path, web_max_page_mb=1.0).read(
                [site.url("/huge.html"), site.url("/declared.html")]
            )
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert articles == []
    assert "over 1 MB, stopped reading" in errors[0].reason
    assert "3.0 MB" in errors[1].reason and "RAG_WEB_MAX_PAGE_MB" in errors[1].reason
    assert peak < 8_000_000  # the body was never held whole
    assert sent["bytes"] < 100_000_000


def test_non_html_content_is_refused_with_its_kind(site, settings, tmp_path):
    site.add("/report.pdf", b"%PDF-1.7\n...", content_type="application/pdf")
    site.add("/photo", b"\x89PNG\r\n\x1a\n....", content_type="image/png")
    site.add("/data", b'{"a": 1}', content_type="application/json")
    site.add("/blob", b"%PDF-1.4 mislabelled", content_type="application/octet-stream")
    site.add("/sitemap.xml", b'<?xml version="1.0"?><urlset></urlset>', content_type="text/xml")
    urls = [site.url(p) for p in ("/report.pdf", "/photo", "/data", "/blob", "/sitemap.xml")]
    articles, errors = split(reader(settings, tmp_path).read(urls))
    assert articles == []
    reasons = [e.reason for e in errors]
    assert reasons[0].startswith("a PDF document (application/pdf)")
    assert reasons[1].startswith("an image (image/png)")
    assert reasons[2].startswith("JSON data (application/json)")
    assert reasons[3].startswith("a PDF document (application/octet-stream)")
    assert reasons[4].startswith("XML that is not an RSS or Atom feed")
    assert all("only HTML pages and RSS/Atom feeds are read" in r for r in reasons)


def test_page_without_article_text(site, settings, tmp_path):
    site.add("/empty.html", "<html><body><nav><a href='/'>Home</a></nav></body></html>")
    _, errors = split(reader(settings, tmp_path).read([site.url("/empty.html")]))
    assert "no article text" in errors[0].reason


def test_declared_charset_and_misdeclared_fallback(site, settings, tmp_path):
    html = (FIXTURES / "library.html").read_text().replace("Oyelaran", "Oyélaràn, café")
    body = html.replace('<meta charset="utf-8">', "").encode("cp1252")
    meta = html.replace('charset="utf-8"', 'charset="windows-1252"').encode("cp1252")
    urls = [
        site.add("/news/cp1252.html", body, content_type="text/html; charset=windows-1252"),
        # The server claims UTF-8 (a common default); the page's own <meta> is right.
        site.add("/news/lying.html", meta, content_type="text/html; charset=utf-8"),
        # Nothing declared and not UTF-8: a guess, but never a failure.
        site.add("/news/unlabelled.html", body, content_type="text/html"),
    ]
    articles, errors = split(reader(settings, tmp_path).read(urls))
    assert errors == [] and len(articles) == 3
    assert all("Oyélaràn, café" in a.text for a in articles[:2])
    assert "Sundays" in articles[2].text
    assert "é" in decode_html("<meta charset='latin1'>é".encode("cp1252"), "text/html")


# ---- politeness


def test_robots_txt_disallow_is_honoured(site, settings, tmp_path):
    add_news(site)
    site.add("/robots.txt", "User-agent: *\nDisallow: /news/bridge", content_type="text/plain")
    urls = [site.url("/news/bridge.html"), site.url("/news/library.html")]
    articles, errors = split(reader(settings, tmp_path).read(urls))
    assert [a.url for a in articles] == [site.url("/news/library.html")]
    assert "robots.txt does not allow" in errors[0].reason
    assert site.hits["/news/bridge.html"] == 0
    assert site.hits["/robots.txt"] == 1  # once per host
    # Not asked to respect it: read.
    articles, _ = split(reader(settings, tmp_path / "b", web_respect_robots=False).read(urls[:1]))
    assert len(articles) == 1


def test_robots_txt_server_error_keeps_out_and_missing_allows(site, settings, tmp_path):
    add_news(site)
    site.add("/robots.txt", "oops", status=503, content_type="text/plain")
    _, errors = split(reader(settings, tmp_path).read([site.url("/news/library.html")]))
    assert "could not be read" in errors[0].reason and site.hits["/news/library.html"] == 0
    del site.routes["/robots.txt"]  # a 404: no rules
    articles, _ = split(reader(settings, tmp_path / "b").read([site.url("/news/library.html")]))
    assert len(articles) == 1


def test_requests_to_one_host_are_spaced(site, settings, tmp_path):
    add_news(site)
    feed = site.fixture("/feed.xml", "feed.rss", content_type="application/rss+xml")
    delay = 0.2
    articles, errors = split(reader(settings, tmp_path, web_host_delay=delay).read([feed]))
    assert len(articles) == 2 and errors == []
    times = [t for _, t in site.arrivals]
    assert [p for p, _ in site.arrivals] == [
        "/robots.txt",
        "/feed.xml",
        "/news/harbour.html",
        "/news/bridge.html",
    ]
    assert all(b - a >= delay for a, b in zip(times, times[1:], strict=False))


def test_crawl_delay_in_robots_txt_is_observed(site, settings, tmp_path):
    add_news(site)
    site.add("/robots.txt", "User-agent: *\nCrawl-delay: 1\n", content_type="text/plain")
    urls = [site.url("/news/library.html"), site.url("/news/bridge.html")]
    split(reader(settings, tmp_path).read(urls))
    times = [t for _, t in site.arrivals]
    assert len(times) == 3 and times[2] - times[1] >= 1


# ---- identity and repeated runs


def test_same_story_reached_twice_is_read_once(site, settings, tmp_path):
    add_news(site)
    feed = site.fixture("/feed.xml", "feed.rss", content_type="application/rss+xml")
    site.redirect("/short/h", "/news/harbour.html")
    urls = [
        feed,
        site.url("/news/harbour.html?utm_campaign=x#comments"),  # same URL, tagged
        site.url("/short/h"),  # redirects to it
        site.url("/news/amp/harbour.html"),  # names it canonical
    ]
    articles, errors = split(reader(settings, tmp_path).read(urls))
    assert errors == []
    assert sorted(a.url for a in articles) == [
        site.url("/news/bridge.html"),
        site.url("/news/harbour.html"),
    ]
    assert site.hits["/news/harbour.html"] == 2  # once from the feed, once after the redirect


def test_second_run_fetches_no_pages(site, settings, tmp_path):
    add_news(site)
    feed = site.fixture("/feed.xml", "feed.rss", content_type="application/rss+xml")
    page = site.url("/news/library.html")
    first, errors = split(reader(settings, tmp_path).read([feed, page]))
    assert len(first) == 3 and errors == []
    assert site.page_requests() == 3
    site.statuses.clear()

    second, errors = split(reader(settings, tmp_path).read([feed, page]))
    assert errors == []
    assert [a.fingerprint() for a in second] == [a.fingerprint() for a in first]
    assert [a.path for a in second] == [a.path for a in first]
    # The feed and the page asked conditionally and got 304; the feed's entries were not asked.
    assert site.statuses == [("/feed.xml", 304), ("/news/library.html", 304)]
    assert site.page_requests() == 4


def test_changed_feed_fetches_only_new_entries(site, settings, tmp_path):
    add_news(site)
    feed = site.fixture("/feed.xml", "feed.rss", content_type="application/rss+xml")
    split(reader(settings, tmp_path).read([feed]))
    rss = (FIXTURES / "feed.rss").read_text()
    item = "<item><title>Library</title><link>BASE/news/library.html</link></item>\n</channel>"
    site.add("/feed.xml", rss.replace("</channel>", item), content_type="application/rss+xml")
    site.hits.clear()
    articles, _ = split(reader(settings, tmp_path).read([feed]))
    assert len(articles) == 3
    assert site.page_requests() == 1 and site.hits["/news/library.html"] == 1


def test_last_modified_alone_gives_a_304(site, settings, tmp_path):
    body = (FIXTURES / "bridge.html").read_bytes()

    def last_modified_only(h: BaseHTTPRequestHandler) -> None:
        fresh = h.headers.get("If-Modified-Since") == PUBLISHED
        site.statuses.append(("/news/bridge.html", 304 if fresh else 200))
        h.send_response(304 if fresh else 200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Last-Modified", PUBLISHED)
        h.send_header("Content-Length", "0" if fresh else str(len(body)))
        h.end_headers()
        if not fresh:
            h.wfile.write(body)

    url = site.add("/news/bridge.html", handler=last_modified_only)
    first, _ = split(reader(settings, tmp_path).read([url]))
    second, _ = split(reader(settings, tmp_path).read([url]))
    assert len(first) == len(second) == 1 and second[0].text == first[0].text
    pages = [s for s in site.statuses if s[0] != "/robots.txt"]
    assert pages == [("/news/bridge.html", 200), ("/news/bridge.html", 304)]


def test_corrupt_cache_is_ignored_with_a_warning(site, settings, tmp_path, caplog):
    add_news(site)
    cache = tmp_path / "web" / "cache.sqlite3"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"this is not a database" * 100)
    with caplog.at_level("WARNING", logger="rag.web"):
        articles, errors = split(reader(settings, tmp_path).read([site.url("/news/library.html")]))
    assert len(articles) == 1 and errors == []
    assert "unreadable" in caplog.text
    # The next run has a working cache again.
    split(reader(settings, tmp_path).read([site.url("/news/library.html")]))
    assert site.statuses[-1] == ("/news/library.html", 304)


def test_one_log_line_per_fetched_url(site, settings, tmp_path, caplog):
    add_news(site)
    with caplog.at_level("INFO", logger="rag.web"):
        split(reader(settings, tmp_path).read([site.url("/news/library.html")]))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("GET ")]
    assert len(lines) == 2  # robots.txt and the page
    assert lines[1].startswith(f"GET {site.url('/news/library.html')} -> 200, ")
    assert lines[1].endswith(" ms")


def test_feed_without_validators_still_fetches_no_pages_again(site, settings, tmp_path):
    add_news(site)
    feed = site.fixture(
        "/feed.xml", "feed.rss", content_type="application/rss+xml", validators=False
    )
    first, _ = split(reader(settings, tmp_path).read([feed]))
    second, _ = split(reader(settings, tmp_path).read([feed]))
    assert len(first) == len(second) == 2
    assert site.hits["/feed.xml"] == 2 and site.page_requests() == 2


@pytest.mark.e2e
def test_ingest_feed_url_then_second_run_does_no_work(site, settings, embed):
    from rag.embeddings import LOCAL_DIM, LOCAL_MODEL_NAME
    from rag.ingest import Ingestor
    from rag.store import open_store

    add_news(site)
    feed = site.fixture("/feed.xml", "feed.rss", content_type="application/rss+xml")
    s = settings.model_copy(update=FAST)
    ingestor = Ingestor(s, open_store(s, LOCAL_MODEL_NAME, LOCAL_DIM), embed)
    first = ingestor.run([feed], progress=False)
    assert first.errors == [] and first.articles.added == 2
    assert set(ingestor.store.indexed()) == {
        site.url("/news/harbour.html"),
        site.url("/news/bridge.html"),
    }
    pages = site.page_requests()
    second = ingestor.run([feed], prune=True, progress=False)
    assert second.articles.unchanged == 2 and second.articles.removed == 0
    assert site.page_requests() == pages
