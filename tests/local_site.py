"""A news site on 127.0.0.1 for tests that follow feeds (tests/test_web.py's Site, served)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer

from tests.conftest import free_port
from tests.test_web import Site, _handler_for, add_news


@contextmanager
def news_site() -> Iterator[tuple[Site, str]]:
    """The site with its news pages, and the URL of its RSS feed listing two of them."""
    port = free_port()
    site = Site(port)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(site))
    server.daemon_threads = True  # a handler still running must not hold the test up
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        add_news(site)
        yield site, site.fixture("/feed.xml", "feed.rss", content_type="application/rss+xml")
    finally:
        server.shutdown()
        server.server_close()
