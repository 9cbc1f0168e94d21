"""Read news from the web: RSS/Atom feeds and pages become Articles, politely and safely.

`WebReader(settings, cache_dir).read(urls)` yields an `Article` per story and a `ReadError` per
URL that failed (with its reason), like `read_sources` does for files. A feed URL yields the
article behind each entry; a page URL yields that page. Feed or page is decided by the response's
content type and its first bytes, never by the URL.

Identity: an article's id and url are its canonical URL (the page's `<link rel=canonical>` when it
is on the page's own origin: same scheme, host and port; else the URL after redirects),
normalised: lower-case scheme and host, no default port, no fragment, no tracking parameters,
sorted query. The same story reached twice in one run (from a feed and directly, through
redirects, with `utm_*` tags) is yielded once. `path` is the URL given to `read`, so that pruning
by source keeps what each feed still lists. Title, date and authors are the page's own; a feed
entry fills only what the page lacks, and only for a page on the feed's own origin (any feed may
list any URL, so it must not retitle or redate another site's story); a feed date more than a day
in the future is dropped, and entry fields are cut at `MAX_FIELD_CHARS`.

Politeness and safety: only http(s), also for feed links and redirect targets; redirects bounded
(`web_max_redirects`) with loop detection; one deadline (`web_timeout`) covers a URL's whole
fetch, redirects included: every socket operation (connect, TLS handshake, each read of the
headers and the body) is given only the time left, and a watchdog cuts the connection should one
still wait past it, so a server trickling bytes fails at the timeout. Only the URL the user gives
may be at a local address: its origin exactly as typed (scheme, host, port). What a feed links
to or a redirect leads to elsewhere is refused at a loopback, private, link-local or otherwise
non-public address unless `web_allow_private` is set, so a hostile feed cannot make the ingester
read an intranet page or a cloud metadata endpoint into the store. Numeric hosts are read in
every form resolvers accept (2130706433, 0x7f.1, 127.1, ::ffff:127.0.0.1) before the check; a
name is resolved once a run and connections go to the addresses checked (no DNS rebinding
between check and connect), with the name kept for the Host header, TLS SNI and certificate.
Bodies are streamed and abandoned at `web_max_page_mb`, counted after decoding; content
encodings are decoded here a bounded step at a time (gzip, deflate, br when brotli 1.2+ is
installed; only those are asked for, others refused), so a small compressed bomb never expands
in memory; at most `MAX_ENCODINGS` stacked encodings are undone, and every layer's output counts
against the limit and the deadline. Name lookups and robots.txt count against the URL's deadline;
at most `MAX_LOOKUP_THREADS` lookups run at once. One read of a feed, its pages included, ends
`FEED_BUDGET_TIMEOUTS` timeouts after it began (the entries left are a failed read, so `--prune`
keeps their stories) and reads at most `MAX_FEED_ENTRIES` entries. A feed declaring a DOCTYPE
subset or entities is refused before parsing (entity expansion escapes the size limit); HTML
entities and bare ampersands are read as a browser would. Anything else a server sends that the
libraries raise on is a failed read of that URL, never the end of the run. `web_host_delay`
seconds pass between the end of one request and the start of the next to the same host (longer
when robots.txt asks with Crawl-delay, capped at `MAX_CRAWL_DELAY`); robots.txt is honoured (RFC
9309: 4xx means no rules, 5xx or unreachable means keep out for now), fetched with the same client
and cached for a day.

A feed read is a failed read (a ReadError under the feed, so `--prune` keeps all its stories)
when it is malformed, even if some entries could be recovered (they are read), and when a URL
that was a feed answers with a page (a maintenance page is not stored as a story). A feed that
suddenly lists far fewer entries than its last clean read (under half, and at least `SHRINK_MIN`
fewer) is reported as a warning, and `--prune` keeps the stories it no longer lists; if it is
still that short `SHRINK_GRACE_DAYS` later, that is taken as its new length.

Cache (`cache_dir/cache.sqlite3`, sqlite in WAL mode so a `watch` and an `ingest` can share it):
- every 200 response keeps its ETag/Last-Modified, and the next run asks conditionally; a 304
  answer reuses what the cache kept: the entry list of a feed, the extracted article of a page;
- a feed entry whose page was read before, and whose entry (dates and title) is unchanged, is not
  requested at all: a second run over an unchanged feed costs one 304 and no page fetch;
- the extracted article (zlib-compressed JSON, a few kB) is kept rather than only the validators,
  so that an unchanged story is still yielded: `--prune` then keeps it, and the ingestor's
  fingerprint check makes it cost nothing. Rows not used for `CACHE_KEEP_DAYS` are dropped;
- what each URL given turned out to be (feed or page) and a feed's entry count, for the checks
  above, is not in this cache but in `data_dir/web_sources.sqlite3` (`SOURCES_FILE`), which
  outlives it; a failed read of a feed refreshes its row, and a URL that stopped being a feed is
  read as a page once its row is `SOURCE_KEEP_DAYS` old;
- a cache that cannot be read is moved aside with a warning and the run goes on without it.
"""

from __future__ import annotations

import calendar
import codecs
import contextlib
import html.entities
import io
import ipaddress
import json
import logging
import math
import re
import socket
import sqlite3
import ssl
import threading
import time
import urllib.robotparser
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpcore
import httpx

from rag.articles import Article, ReadError, extract_html, normalise_date
from rag.config import Settings

log = logging.getLogger(__name__)

HTTP_SCHEMES = frozenset({"http", "https"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that only say where a click came from; they never change the story.
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid", "_ga", "_gl"}
    | {"ocid", "cmpid", "ncid", "sr_share", "smid", "mkt_tok", "__twitter_impression"}
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")

FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+xml"}
)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Types whose body must be looked at to know what it is (servers label feeds as any of these).
SNIFF_TYPES = frozenset(
    {"application/xml", "text/xml", "text/plain", "application/octet-stream", ""}
)
# WHATWG mime sniffing looks for a feed's root element within the first 512 bytes; an XML
# declaration, comments or a stylesheet line can come first, so look a little further.
SNIFF_BYTES = 2048
FEED_ROOT = re.compile(rb"<(rss|feed|rdf:rdf)[\s>/]")
HTML_ROOT = re.compile(rb"<(!doctype\s+html|html|head|body)[\s>]")
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.I)
# Browsers (WHATWG Encoding) read these labels as windows-1252, which servers mean by them.
CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "ascii": "cp1252",
}
BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

STREAM_CHUNK = 64 * 1024
# The watchdog cuts a connection this long after its deadline: a socket operation, given only
# the time left, normally ends it first, with a clearer error.
WATCHDOG_GRACE = 0.1
# RFC 9309 2.5: crawlers must parse at least 500 KiB of robots.txt; the rest may be ignored.
ROBOTS_MAX_BYTES = 500 * 1024
# RFC 9309 2.4: a cached robots.txt should not be used for more than 24 hours.
ROBOTS_TTL = 24 * 3600.0
# A Crawl-delay larger than this is a site asking not to be read; cap it so a run still ends.
MAX_CRAWL_DELAY = 30.0
# Less main text than a sentence or two is a page's navigation, not an article.
MIN_ARTICLE_CHARS = 100
CACHE_FILE = "cache.sqlite3"
# What the cache keeps of an article: its content, not where this run found it.
CACHED_FIELDS = ("id", "text", "title", "source", "url", "date", "authors")
CACHE_KEEP_DAYS = 30  # a feed keeps a story for days, rarely for a month
# A second process holding the cache (a watch beside an ingest) gets this long to finish a write.
CACHE_LOCK_SECONDS = 10.0
# A feed listing under half its last clean read's entries, and this many fewer, has shrunk.
SHRINK_MIN = 3
SHRINK_GRACE_DAYS = 3.0
# Stacked content encodings undone at most (servers send one; two is already rare).
MAX_ENCODINGS = 2
# One read of a feed, its entries' pages included, ends this many timeouts after it began
# (RAG_WEB_TIMEOUT bounds one URL; this bounds the ingestion lock a feed of slow pages holds).
# The entries left are reported as not read and `--prune` keeps their stories.
FEED_BUDGET_TIMEOUTS = 30.0
# Entries read from one feed; a longer list is read to this many, with a warning.
MAX_FEED_ENTRIES = 300
# What a feed entry may say: a title, an author's name, at most this long (a longer one is cut).
MAX_FIELD_CHARS = 300
MAX_AUTHORS = 20
# A feed date later than now by more than clock skew is not a date a story was published.
FUTURE_SKEW_SECONDS = 86400
# HTML handed to text extraction at most (characters): trafilatura's time grows faster than
# the page (4.7 MB of short paragraphs took 110 s); an article's own text is far shorter.
MAX_EXTRACT_CHARS = 1_000_000
# Name lookups under way at once (each in a daemon thread that cannot be interrupted).
MAX_LOOKUP_THREADS = 2
# The durable record of what each URL given is (feed or page), in the data dir beside the
# store: it outlives the HTTP cache, which may be deleted at any time.
SOURCES_FILE = "web_sources.sqlite3"
SOURCE_KEEP_DAYS = 365


def is_url(s: str) -> bool:
    """True for anything written as `scheme://...`; non-http(s) schemes are refused when read."""
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", s.strip()))


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


def canonical_url(url: str) -> str:
    """One spelling per story: lower-case scheme and host, no default port, fragment or tracking
    parameters, sorted query (order never changes what a news page shows)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    )
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))


def _site(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


Origin = tuple[str, str, int | None]


def _origin_key(url: str) -> Origin:
    """Scheme, host as written (lower case) and port, the default one filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower().rstrip("."), port or DEFAULT_PORTS.get(scheme)


def _same_origin(a: str, b: str) -> bool:
    """Same scheme, host and port: a page may name a canonical URL only on its own origin,
    else any page (or another port, or a subdomain) could claim another story's id."""
    return _origin_key(a) == _origin_key(b)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_OCTAL = re.compile(r"0[0-7]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]*")


def numeric_host(host: str) -> Address | None:
    """`host` as an address when it is one in any form a resolver accepts: IPv6, dotted IPv4
    with one to four parts, each decimal, octal (0177) or hex (0x7f), the last filling the
    remaining bytes (2130706433, 0x7f.1, 127.1 are all 127.0.0.1). None for a name."""
    host = host.strip().strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        if _HEX.fullmatch(part):
            numbers.append(int(part[2:] or "0", 16))
        elif _OCTAL.fullmatch(part):
            numbers.append(int(part, 8))
        elif _DECIMAL.fullmatch(part):
            numbers.append(int(part))
        else:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


# IPv6 prefixes that carry an IPv4 address in their last 32 bits (IPv4-compatible, NAT64).
_EMBEDDING_V4 = (
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("::ffff:0:0:0/96"),  # IPv4-translated (RFC 2765)
)
# Not global, though Python's is_global says so (or did in some versions).
_NOT_PUBLIC = (
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
    ipaddress.ip_network("fec0::/10"),  # site-local (deprecated, still routed inside sites)
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments (192.0.0.8 and so on)
)


def is_public(address: Address) -> bool:
    """A global address, and so is any IPv4 address inside it (::ffff:127.0.0.1 is loopback)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and any(address in net for net in _EMBEDDING_V4):
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is None and address.teredo:
            inner = address.teredo[1]
        if inner is not None and not is_public(inner):
            return False
    if any(address.version == net.version and address in net for net in _NOT_PUBLIC):
        return False
    return address.is_global


def resolve_host(host: str) -> list[Address]:
    """The addresses `host` is or resolves to, in the resolver's order; [] when it does not
    resolve. The one place names are looked up (tests replace it to fake a public name)."""
    found = numeric_host(host)
    if found is not None:
        return [found]
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _host(url: str) -> str:
    """The host as httpx sends it (IDNA-encoded, lower case): what connections are pinned by."""
    try:
        return httpx.URL(url).raw_host.decode("ascii").lower()
    except (httpx.InvalidURL, UnicodeError):
        return (urlsplit(url).hostname or "").lower()


def _first_private(addresses: list[Address]) -> Address | None:
    return next((a for a in addresses if not is_public(a)), None)


def private_address(url: str) -> str | None:
    """The first loopback, private, link-local or otherwise non-public address `url`'s host
    is or resolves to, or None. A name that does not resolve is None: the fetch will say so."""
    found = _first_private(resolve_host(_host(url)))
    return str(found) if found is not None else None


_LOOKUP_SLOTS = threading.BoundedSemaphore(MAX_LOOKUP_THREADS)


class FetchError(Exception):
    """A URL that could not be read; the message says why and what to do."""

    def __init__(self, reason: str, status: int = 0) -> None:
        super().__init__(reason)
        self.status = status  # the HTTP status when the server answered with an error


# ---- connections: to checked addresses only, within the request's deadline


class _Stream(httpcore.NetworkStream):
    """A connection whose every read, write and handshake gets only the time left."""

    def __init__(self, stream: httpcore.NetworkStream, owner: _Connections) -> None:
        self._stream = stream
        self._owner = owner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._owner.active = self
        return self._stream.read(max_bytes, self._owner.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._owner.active = self
        self._stream.write(buffer, self._owner.bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        self._owner.active = self
        bounded = self._owner.bound(timeout, httpcore.ConnectTimeout)
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, bounded), self._owner)

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)

    def cut(self) -> None:
        """End whatever waits on this connection, from another thread."""
        sock = self._stream.get_extra_info("socket")
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                # The plain socket's shutdown, also under TLS: SSLSocket's own would unwrap.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Connections(httpcore.SyncBackend):
    """httpcore's sockets, opened only to the addresses the reader checked for a host (never a
    second lookup that could answer otherwise), with the deadline of the request under way.
    TLS still names the host (SNI, certificate check) and so does the Host header."""

    def __init__(self) -> None:
        self.pins: dict[str, list[Address]] = {}
        self.deadline = math.inf
        self.active: _Stream | None = None
        # The request under way: a watchdog cuts only the stream of the request it guards,
        # never a pooled connection a later request has taken over.
        self.request = 0
        self._lock = threading.Lock()

    def bound(self, timeout: float | None, expired: type[Exception]) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise expired("the request's deadline has passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.pins.get(host.lower().strip("[]"))
        if not addresses:
            raise httpcore.ConnectError(f"{host} was not checked before connecting; not connected")
        error: Exception | None = None
        for address in addresses:  # in the resolver's order, as getaddrinfo users do
            try:
                stream = super().connect_tcp(
                    str(address),
                    port,
                    self.bound(timeout, httpcore.ConnectTimeout),
                    local_address,
                    socket_options,
                )
            except httpcore.ConnectError as e:
                error = e
                continue
            return _Stream(stream, self)
        assert error is not None
        raise error

    def begin(self, deadline: float) -> int:
        with self._lock:
            self.request += 1
            self.active = None
            self.deadline = deadline
            return self.request

    def end(self) -> None:
        with self._lock:
            self.request += 1
            self.active = None
            self.deadline = math.inf

    def cut(self, request: int) -> None:
        with self._lock:
            if request == self.request and self.active is not None:
                self.active.cut()


class _PinnedTransport(httpx.HTTPTransport):
    def __init__(self, connections: _Connections) -> None:
        super().__init__()
        # httpx takes no network backend: its pool is replaced by one with the same defaults
        # (certificate checks included) that connects through ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=connections,
        )


# ---- content encodings, decoded a bounded step at a time


class _Inflate:
    """gzip, or deflate (zlib-wrapped or raw, as servers send either): at most STREAM_CHUNK
    bytes come out per step, however much a few input bytes stand for."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.inflater: zlib._Decompress | None = None
        self.head = b""

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.inflater is None:
            self.head += data
            if self.encoding == "deflate" and len(self.head) < 2:
                return  # too little to tell the two kinds of deflate apart
            yield from self.finish()
            return
        while True:
            inflater = self.inflater
            if inflater.eof:
                # gzip may hold several members one after another (RFC 1952 2.2): read them
                # all, as gzip(1) does; trailing zeros some servers pad with are not a member.
                data = inflater.unused_data + data
                if self.encoding != "gzip" or not data.strip(b"\0"):
                    return
                self.inflater = inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = inflater.decompress(data, STREAM_CHUNK)
            data = inflater.unconsumed_tail
            if out:
                yield out
            elif not data and not inflater.eof:
                return

    def finish(self) -> Iterator[bytes]:
        if self.inflater is None and self.head:
            data, self.head = self.head, b""
            self.inflater = zlib.decompressobj(self._wbits(data))
            yield from self.feed(data)

    def _wbits(self, head: bytes) -> int:
        if self.encoding == "gzip":
            return 16 + zlib.MAX_WBITS
        if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
            return zlib.MAX_WBITS
        return -zlib.MAX_WBITS


class _Brotli:
    """brotli (the `brotli` package 1.2 or later, whose decoder stops at a given output)."""

    def __init__(self) -> None:
        import brotli

        self.decoder = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        out = self.decoder.process(data, output_buffer_limit=STREAM_CHUNK)
        while True:
            if out:
                yield out
            if self.decoder.is_finished() or self.decoder.can_accept_more_data():
                return
            out = self.decoder.process(b"", output_buffer_limit=STREAM_CHUNK)

    def finish(self) -> Iterator[bytes]:
        return iter(())


def _brotli_errors() -> tuple[type[Exception], ...] | None:
    """brotli's error type when its decoder can be bounded (brotli 1.2+), else None."""
    try:
        import brotli
    except ImportError:
        return None
    if not hasattr(brotli.Decompressor, "can_accept_more_data"):
        return None
    return (brotli.error,)


DECODERS: dict[str, Callable[[], _Inflate | _Brotli]] = {
    "gzip": lambda: _Inflate("gzip"),
    "x-gzip": lambda: _Inflate("gzip"),
    "deflate": lambda: _Inflate("deflate"),
}
DAMAGED: tuple[type[Exception], ...] = (zlib.error,)
if (_brotli := _brotli_errors()) is not None:
    DECODERS["br"] = _Brotli
    DAMAGED += _brotli
# Only encodings decoded step by step are asked for (httpx would ask for zstd when installed).
ACCEPTED = ", ".join(e for e in DECODERS if e != "x-gzip")


def _content_encodings(header: str) -> list[str]:
    """The encodings to undo, last applied first; one not asked for is refused."""
    found = [e.strip().lower() for e in header.split(",") if e.strip()]
    found = [e for e in found if e != "identity"]
    if len(found) > MAX_ENCODINGS:
        raise FetchError(
            f"the response names {len(found)} content encodings, one over another; at most "
            f"{MAX_ENCODINGS} are undone (a server sends one). Ask the site to send a plain or "
            "gzip response"
        )
    for encoding in found:
        if encoding not in DECODERS:
            raise FetchError(
                f"the response is {encoding[:40]}-encoded, which was not asked for "
                f"(Accept-Encoding: {ACCEPTED}); ask the site to send a plain or gzip response"
            )
    return found[::-1]


def _decoded(
    chunks: Iterator[bytes],
    encodings: list[str],
    check: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The body with `encodings` undone. `check` is called with the bytes each layer has put
    out so far, after every step: layers in between count too (an inner stream that decodes
    to nothing would otherwise burn CPU unseen by the caller's size and deadline checks)."""
    for encoding in encodings:
        chunks = _undo(chunks, encoding, check)
    return chunks


def _undo(
    chunks: Iterator[bytes], encoding: str, check: Callable[[int], None] | None
) -> Iterator[bytes]:
    decoder = DECODERS[encoding]()
    produced = 0
    try:
        for chunk in chunks:
            for out in decoder.feed(chunk):
                produced += len(out)
                if check is not None:
                    check(produced)
                yield out
            if check is not None:
                check(produced)  # a step that put out nothing still takes time
        yield from decoder.finish()
    except DAMAGED as e:
        raise FetchError(f"the response's {encoding} encoding is damaged ({e})") from None


@dataclass
class _Response:
    url: str  # after redirects
    status: int  # 200 or 304
    content_type: str = ""
    body: bytes = b""
    etag: str | None = None
    modified: str | None = None  # Last-Modified, sent back as If-Modified-Since
    cached: dict | None = None  # the cache row a 304 confirmed


@dataclass
class _Stats:
    fetched: int = 0
    not_modified: int = 0
    from_cache: int = 0
    failed: int = 0
    duplicates: int = 0


@dataclass
class _Entry:
    """What a feed says about one story; kept in the cache so a 304 feed needs no parsing."""

    link: str
    title: str = ""
    date: str = ""
    authors: list[str] = field(default_factory=list)
    version: str = ""  # changes when the publisher updates the entry


class _Cache:
    """Validators, feed entries and extracted articles by URL, in sqlite; never fatal."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS http (url TEXT PRIMARY KEY, kind TEXT, etag TEXT,"
        " modified TEXT, payload BLOB, used REAL)",
        "CREATE TABLE IF NOT EXISTS entries (link TEXT PRIMARY KEY, version TEXT, page TEXT,"
        " used REAL)",
        # What a URL the user gives turned out to be on its last good read, and for a feed how
        # many entries it listed then (`reference`), and since when it lists far fewer.
        "CREATE TABLE IF NOT EXISTS sources (url TEXT PRIMARY KEY, kind TEXT, reference INTEGER,"
        " shrunk_since REAL, used REAL)",
    )

    def __init__(
        self, cache_dir: Path | None, name: str = CACHE_FILE, keep_days: float = CACHE_KEEP_DAYS
    ) -> None:
        self.db: sqlite3.Connection | None = None
        self.keep_days = keep_days
        path = cache_dir / name if cache_dir is not None else None
        try:
            self.db = self._open(path)
        except sqlite3.Error as e:
            log.warning(
                "web cache %s is unreadable (%s); moving it aside and starting anew", path, e
            )
            try:
                if path is not None:
                    path.replace(path.with_name(f"{name}.corrupt-{int(time.time())}"))
                    for extra in ("-wal", "-shm"):
                        path.with_name(name + extra).unlink(missing_ok=True)
                self.db = self._open(path)
            except (OSError, sqlite3.Error) as e2:
                log.warning("web cache disabled for this run (%s): every URL is fetched again", e2)
                self.db = None

    def _open(self, path: Path | None) -> sqlite3.Connection:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            str(path) if path else ":memory:",
            timeout=CACHE_LOCK_SECONDS,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            for statement in self.SCHEMA:
                db.execute(statement)
            stale = time.time() - self.keep_days * 86400
            db.execute("DELETE FROM http WHERE used < ?", (stale,))
            db.execute("DELETE FROM entries WHERE used < ?", (stale,))
            db.execute("DELETE FROM sources WHERE used < ?", (stale,))
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _run(self, sql: str, args: tuple = ()) -> list[tuple]:
        if self.db is None:
            return []
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            log.warning("web cache failed (%s); going on without it for this run", e)
            self.close()
            return []

    def close(self) -> None:
        if self.db is not None:
            with contextlib.suppress(sqlite3.Error):
                self.db.close()
            self.db = None

    def get(self, url: str) -> dict | None:
        rows = self._run(
            "SELECT kind, etag, modified, payload FROM http WHERE url = ?", (canonical_url(url),)
        )
        if not rows:
            return None
        kind, etag, modified, payload = rows[0]
        try:
            value = json.loads(zlib.decompress(payload)) if payload is not None else None
        except (zlib.error, ValueError, TypeError):
            log.warning("web cache row for %s is damaged; fetching it again", url)
            return None
        return {"kind": kind, "etag": etag, "modified": modified, "value": value}

    def put(self, url: str, kind: str, etag: str | None, modified: str | None, value) -> None:
        blob = zlib.compress(json.dumps(value, ensure_ascii=False).encode())
        self._run(
            "INSERT OR REPLACE INTO http VALUES (?, ?, ?, ?, ?, ?)",
            (canonical_url(url), kind, etag, modified, blob, time.time()),
        )

    def touch(self, url: str) -> None:
        self._run("UPDATE http SET used = ? WHERE url = ?", (time.time(), canonical_url(url)))

    def entry(self, link: str) -> tuple[str, str] | None:
        rows = self._run("SELECT version, page FROM entries WHERE link = ?", (canonical_url(link),))
        return (rows[0][0], rows[0][1]) if rows else None

    def source(self, url: str) -> tuple[str, int, float | None] | None:
        rows = self._run(
            "SELECT kind, reference, shrunk_since FROM sources WHERE url = ?", (canonical_url(url),)
        )
        return (rows[0][0], rows[0][1] or 0, rows[0][2]) if rows else None

    def put_source(self, url: str, kind: str, reference: int, shrunk_since: float | None) -> None:
        self._run(
            "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?)",
            (canonical_url(url), kind, reference, shrunk_since, time.time()),
        )

    def put_entry(self, link: str, version: str, page: str) -> None:
        self._run(
            "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)",
            (canonical_url(link), version, canonical_url(page), time.time()),
        )


class WebReader:
    """Turns http(s) URLs (feeds or pages) into Articles; see the module docstring."""

    def __init__(self, settings: Settings, cache_dir: Path | None = None) -> None:
        self.settings = settings
        self.cache_dir = cache_dir
        self.max_bytes = int(settings.web_max_page_mb * 1_000_000)
        self.stats = _Stats()
        # Filled by read(): notes for the report, and sources whose stories `--prune` keeps
        # though the read did not fail (a feed that suddenly lists far fewer entries).
        self.warnings: list[str] = []
        self.kept: set[str] = set()
        self._last_request: dict[str, float] = {}  # netloc -> monotonic end of the last request
        self._last_robots: dict[str, float] = {}  # the same for robots.txt requests
        self._robots: dict[str, tuple[urllib.robotparser.RobotFileParser | None, str]] = {}
        self._client: httpx.Client | None = None
        self._cache: _Cache | None = None
        self._state: _Cache | None = None
        self._net = _Connections()
        self._resolved: dict[str, list[Address]] = {}  # host -> addresses, looked up once a run
        self._until = math.inf  # the end of the budget of the feed under way

    @property
    def _sources(self) -> _Cache:
        """The durable record of what each URL given is, during read()."""
        assert self._state is not None, "the record is open only during read()"
        return self._state

    def _source(self, url: str) -> tuple[str, int, float | None] | None:
        # Written to the HTTP cache by earlier versions: read from there until rewritten.
        return self._sources.source(url) or self._open_cache.source(url)

    @property
    def _open_cache(self) -> _Cache:
        """The cache of the read() under way (there is none outside one)."""
        assert self._cache is not None, "the cache is open only during read()"
        return self._cache

    # ---- public

    def read(self, urls: Sequence[str]) -> Iterator[Article | ReadError]:
        """Yield each story behind `urls` once, and a ReadError for each URL that failed."""
        self.stats = _Stats()
        self.warnings, self.kept = [], set()
        self._robots = {}  # a site closed by a failing robots.txt gets another chance each run
        seen_ids: set[str] = set()
        # request URL -> ("ok", article id) or ("error", reason): nothing is fetched twice a run
        done: dict[str, tuple[str, str]] = {}
        started = time.perf_counter()
        self._net = _Connections()
        self._resolved = {}
        with httpx.Client(
            follow_redirects=False,  # followed by hand: every target is checked and counted
            headers={"User-Agent": self.settings.web_user_agent, "Accept-Encoding": ACCEPTED},
            timeout=self.settings.web_timeout,
            event_hooks={"response": [_check_redirect]},
            transport=_PinnedTransport(self._net),
            # A proxy from the environment would resolve names itself, past every check here.
            trust_env=False,
        ) as client:
            self._client = client
            self._cache = _Cache(self.cache_dir)
            # Beside the store, not in the disposable HTTP cache (a cache-less reader keeps
            # it in memory too).
            state_dir = self.settings.data_dir if self.cache_dir is not None else None
            self._state = _Cache(state_dir, SOURCES_FILE, SOURCE_KEEP_DAYS)
            try:
                for raw in urls:
                    given = raw.strip()
                    for item in self._read_one(given, done):
                        if isinstance(item, ReadError):
                            self.stats.failed += 1
                            yield item
                        elif item.id in seen_ids:
                            self.stats.duplicates += 1
                            log.info("%s: same story as an earlier URL, read once", item.url)
                        else:
                            seen_ids.add(item.id)
                            yield item
            finally:
                self._cache.close()
                self._state.close()
                self._client = None
        s = self.stats
        log.info(
            "web: %d fetched, %d not modified, %d from cache, %d duplicates, %d failed in %.1f s",
            s.fetched,
            s.not_modified,
            s.from_cache,
            s.duplicates,
            s.failed,
            time.perf_counter() - started,
        )

    # ---- one URL given by the user

    def _read_one(self, given: str, done: dict) -> Iterator[Article | ReadError]:
        if _scheme(given) not in HTTP_SCHEMES:
            yield ReadError(given, _scheme_refusal(given, "given"))
            return
        key = canonical_url(given)
        if key in done:
            status, value = done[key]
            if status == "error":
                yield ReadError(given, value)
            return
        # Only what the user names may be local: the origin of their URL (exactly as typed).
        # What it links or redirects to elsewhere follows RAG_WEB_ALLOW_PRIVATE.
        trusted = _origin_key(given)
        known = self._source(given)
        was_feed = known is not None and known[0] == "feed"
        damage = ""
        try:
            response = self._fetch(given, trusted)
            kind = response.cached["kind"] if response.cached else _kind(response)
            if kind == "feed":
                entries, damage = self._feed_entries(response)
            elif was_feed:
                raise FetchError(
                    "answered with a web page where it had an RSS/Atom feed (a maintenance or "
                    "error page?); the page is not stored and `--prune` keeps this feed's "
                    "stories. If the feed has moved, give its new URL"
                )
            else:
                article = self._page_article(response)
        except FetchError as e:
            if was_feed and known is not None:  # still a feed, as far as anyone knows
                self._sources.put_source(given, "feed", known[1], known[2])
            done[key] = ("error", str(e))
            yield ReadError(given, str(e))
            return
        if kind == "page":
            done[key] = ("ok", article.id)
            article.path = given
            self._sources.put_source(given, "page", 1, None)
            yield article
            return
        done[key] = ("ok", "")
        log.info("%s: feed with %d entries", given, len(entries))
        if damage:
            # A failed read: the record that this is a feed is kept fresh, as it was.
            reference, since = (known[1], known[2]) if was_feed and known else (0, None)
            self._sources.put_source(given, "feed", reference, since)
            yield ReadError(
                given,
                f"the feed is damaged ({damage}); read the {len(entries)} entries that "
                "could be recovered, and `--prune` keeps every story of this feed until it "
                "reads cleanly. Ask the site to fix its feed",
            )
        else:
            self._note_feed_length(given, len(entries), known)
        if len(entries) > MAX_FEED_ENTRIES:
            self.kept.add(given)
            self.warnings.append(
                f"{given}: the feed lists {len(entries)} entries; the first {MAX_FEED_ENTRIES} "
                "are read, and `--prune` keeps this feed's other stories"
            )
            entries = entries[:MAX_FEED_ENTRIES]
        # One read of a feed has an overall budget: N slow entries must not hold the
        # ingestion lock N timeouts long.
        self._until = time.monotonic() + FEED_BUDGET_TIMEOUTS * self.settings.web_timeout
        try:
            for i, entry in enumerate(entries):
                if time.monotonic() >= self._until:
                    yield ReadError(
                        given,
                        f"{len(entries) - i} of {len(entries)} entries were not read within "
                        f"{self._budget_text()}; `--prune` keeps their stories, and the next "
                        "run reads them (pages read before are not fetched again)",
                    )
                    return
                yield from self._read_entry(entry, given, done, trusted)
        finally:
            self._until = math.inf

    def _note_feed_length(self, feed: str, n: int, known: tuple | None) -> None:
        """Remember how many entries a clean read of `feed` listed. A feed that suddenly lists
        far fewer (under half, and at least SHRINK_MIN fewer) is reported, and `--prune` keeps
        the stories it no longer lists; if it is still that short SHRINK_GRACE_DAYS later, that
        is taken as its new length."""
        reference = known[1] if known is not None and known[0] == "feed" else 0
        since = known[2] if known is not None else None
        if not (n * 2 < reference and reference - n >= SHRINK_MIN):
            self._sources.put_source(feed, "feed", n, None)
            return
        now = time.time()
        since = since or now
        if now - since >= SHRINK_GRACE_DAYS * 86400:
            self._sources.put_source(feed, "feed", n, None)
            return
        self._sources.put_source(feed, "feed", reference, since)
        self.kept.add(feed)
        self.warnings.append(
            f"{feed}: the feed lists {n} entries where it listed {reference}; `--prune` keeps "
            f"the stories it no longer lists (for {SHRINK_GRACE_DAYS:g} days, after which the "
            "shorter feed is taken as it is)"
        )

    def _read_entry(
        self, entry: _Entry, feed: str, done: dict, trusted: Origin
    ) -> Iterator[Article | ReadError]:
        # Errors carry the feed as path, so that `--prune` keeps what this feed still lists
        # (the ingestor spares articles whose source failed), and name the entry in the reason.
        if not entry.link:
            yield ReadError(feed, f"entry '{entry.title or '?'}' has no link to an article")
            return
        if _scheme(entry.link) not in HTTP_SCHEMES:
            yield ReadError(feed, f"{entry.link}: {_scheme_refusal(entry.link, 'linked')}")
            return
        key = canonical_url(entry.link)
        if key in done:
            status, value = done[key]
            if status == "error":
                yield ReadError(feed, f"{entry.link}: {value}")
            return
        article = self._cached_entry(entry)
        if article is None:
            try:
                response = self._fetch(entry.link, trusted)
                article = self._page_article(response)
            except FetchError as e:
                done[key] = ("error", str(e))
                yield ReadError(feed, f"{entry.link}: {e}")
                return
            self._open_cache.put_entry(entry.link, entry.version, response.url)
        done[key] = ("ok", article.id)
        yield _with_entry(article, entry, feed)

    def _cached_entry(self, entry: _Entry) -> Article | None:
        """The article read for this entry before, when the feed says it has not changed."""
        known = self._open_cache.entry(entry.link)
        if known is None or known[0] != entry.version:
            return None
        row = _usable(self._open_cache.get(known[1]))
        if row is None or row["kind"] != "page":
            return None
        self._open_cache.touch(known[1])
        self._open_cache.put_entry(entry.link, entry.version, known[1])
        self.stats.from_cache += 1
        log.debug("%s: unchanged in its feed, not fetched", entry.link)
        return row["article"]

    # ---- feeds and pages

    def _feed_entries(self, response: _Response) -> tuple[list[_Entry], str]:
        """The feed's entries, and what is wrong with it when it is malformed but some entries
        could be recovered ("" when it is clean)."""
        if response.cached:
            return response.cached["entries"], ""
        import feedparser  # imported late: only feeds need it

        body = response.body
        if _declares_entities(body):
            raise FetchError(
                "the feed declares a DOCTYPE or entities of its own, which feeds have no need "
                "of and which can expand a small feed into gigabytes; it is not read. Ask the "
                "site to send a plain RSS or Atom feed"
            )
        # Sniffed as a feed: parse it as XML whatever its label (servers send feeds as
        # text/plain, text/html, octet-stream), keeping the label's charset.
        params = response.content_type.partition(";")[2]
        headers = {
            "content-type": "application/xml" + (f";{params}" if params else ""),
            "content-location": response.url,
        }
        if _media_type(response.content_type) not in FEED_TYPES | {"application/xml", "text/xml"}:
            log.info("%s: a feed labelled %r", response.url, response.content_type)

        def parse(data: bytes):
            # A stream, never bytes or str: feedparser opens a str that looks like a URL or
            # a file name itself, which would bypass every check here.
            return feedparser.parse(io.BytesIO(data), response_headers=headers)

        parsed = parse(body)
        if parsed.bozo and b"&" in body:
            # HTML entities (&nbsp;) and bare ampersands are common in feeds and make them
            # ill-formed XML; written as XML would, the same feed may parse cleanly.
            fixed = parse(_xml_ampersands(body))
            if not fixed.bozo:
                parsed = fixed
        if parsed.bozo and not parsed.entries:
            raise FetchError(
                f"not a valid RSS or Atom feed ({_bozo_reason(parsed.bozo_exception)}); "
                "check the URL, or ask the site to fix its feed"
            )
        entries = [_entry(e, response.url) for e in parsed.entries]
        if parsed.bozo:
            # Not kept: a 304 must not later stand for this partial list as if it were whole.
            return entries, _bozo_reason(parsed.bozo_exception)
        self._store(response, "feed", [asdict(e) for e in entries])
        return entries, ""

    def _page_article(self, response: _Response) -> Article:
        if response.cached:
            if response.cached["kind"] != "page":
                raise FetchError("a feed, where a page was expected (feeds do not nest)")
            return response.cached["article"]
        kind = _kind(response)
        if kind != "page":
            raise FetchError("a feed, where a page was expected (feeds do not nest)")
        try:
            article = _extract(decode_html(response.body, response.content_type), response.url)
        except UNEXPECTED as e:
            raise _unexpected(response.url, e) from None
        self._store(response, "page", {k: getattr(article, k) for k in CACHED_FIELDS})
        return article

    def _store(self, response: _Response, kind: str, value) -> None:
        self._open_cache.put(response.url, kind, response.etag, response.modified, value)

    # ---- HTTP

    def _fetch(self, url: str, trusted: Origin) -> _Response:
        try:
            return self._fetch_checked(url, trusted)
        except UNEXPECTED as e:
            raise _unexpected(url, e) from None

    def _fetch_checked(self, url: str, trusted: Origin) -> _Response:
        """GET `url` following at most `web_max_redirects` checked redirects, within one
        `web_timeout` deadline; 200 with the body, or 304 with the cache row it confirms.
        Only the `trusted` origin (the user's URL) may be at a non-public address."""
        s = self.settings
        budget = s.web_timeout  # network time left; waiting for politeness does not count
        chain = [_without_fragment(url)]  # exact URLs: /a?utm_source=x -> /a is no loop
        current = url
        while True:
            # The name lookup and robots.txt count against the URL's deadline too.
            began = time.monotonic()
            try:
                # Checked before robots.txt is asked for, so a refusal says what it is.
                self._admit(current, trusted, began + budget)
                if s.web_respect_robots:
                    self._check_robots(current, trusted, began + budget)
            finally:
                budget -= time.monotonic() - began
            cached = _usable(self._open_cache.get(current))
            headers = {"Accept": ACCEPT}
            if cached and cached["etag"]:
                headers["If-None-Match"] = cached["etag"]
            if cached and cached["modified"]:
                headers["If-Modified-Since"] = cached["modified"]
            self._wait_for_host(current)
            started = time.monotonic()
            try:
                response, location = self._request(
                    current, trusted, headers, min(started + budget, self._until)
                )
            finally:
                self._last_request[urlsplit(current).netloc.lower()] = time.monotonic()
                budget -= time.monotonic() - started
            if location is None:
                if response.status == 304:
                    if cached is None:
                        raise FetchError("the server answered 304 to a plain request")
                    self.stats.not_modified += 1
                    self._open_cache.touch(current)
                    response.cached = cached
                else:
                    self.stats.fetched += 1
                return response
            target = _redirect_target(current, location)
            if _scheme(target) not in HTTP_SCHEMES:
                raise FetchError(
                    f"redirected to {target[:200]}; only http(s) redirects are followed"
                )
            key = _without_fragment(target)
            if key in chain:
                raise FetchError(f"redirect loop: {' -> '.join(chain + [key])}")
            chain.append(key)
            if len(chain) - 1 > s.web_max_redirects:
                raise FetchError(
                    f"more than {s.web_max_redirects} redirects (RAG_WEB_MAX_REDIRECTS); "
                    f"last at {target[:200]}"
                )
            current = target

    def _admit(self, url: str, trusted: Origin, deadline: float) -> None:
        """Resolve `url`'s host (once a run: no DNS rebinding between two requests), refuse a
        non-public address unless `url` is on the `trusted` origin or RAG_WEB_ALLOW_PRIVATE is
        set, and pin the host to the addresses checked: connections go there and nowhere else."""
        host = _host(url)
        addresses = self._resolved.get(host)
        if addresses is None:
            addresses = self._resolve(host, deadline)
            if not addresses:
                raise FetchError(f"cannot resolve {host!r}; check the address and your network")
            self._resolved[host] = addresses
        if not (self.settings.web_allow_private or _origin_key(url) == trusted):
            private = _first_private(addresses)
            if private is not None:
                raise FetchError(
                    f"{urlsplit(url).hostname} is a local or private address ({private}); only a "
                    "URL you give yourself may be local, not one a feed or a redirect leads to. "
                    "Give that URL yourself, or set RAG_WEB_ALLOW_PRIVATE=true if you trust "
                    "the feed"
                )
        self._net.pins[host] = addresses

    def _resolve(self, host: str, deadline: float) -> list[Address]:
        """resolve_host within the deadline: a lookup cannot be interrupted, so it runs in a
        thread that is left to finish on its own when the deadline passes first."""
        if numeric_host(host) is not None:
            return resolve_host(host)
        found: list[Address] = []
        done = threading.Event()
        # At most MAX_LOOKUP_THREADS lookups at once, in this process: a hung resolver leaves
        # that many daemon threads waiting on it, never one per URL of a feed.
        if not _LOOKUP_SLOTS.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise FetchError(self._lookup_timeout_reason(host))

        def lookup() -> None:
            try:
                found.extend(resolve_host(host))
            finally:
                _LOOKUP_SLOTS.release()
                done.set()

        threading.Thread(target=lookup, name="rag-web-lookup", daemon=True).start()
        if not done.wait(max(0.0, deadline - time.monotonic())):
            raise FetchError(self._lookup_timeout_reason(host))
        return found

    def _lookup_timeout_reason(self, host: str) -> str:
        return (
            f"the name lookup for {host!r} did not finish within {self.settings.web_timeout:g} s "
            "(RAG_WEB_TIMEOUT); the DNS resolver is slow or down: check your network and try "
            "again later"
        )

    def _request(
        self,
        url: str,
        trusted: Origin,
        headers: dict[str, str],
        deadline: float,
        limit: int | None = None,
    ) -> tuple[_Response, str | None]:
        """One request: the response (body only for 2xx) and the redirect target, if any.
        With `limit`, a longer body is cut there instead of refused (robots.txt).
        Nothing of it outlives `deadline`: every socket operation is given only the time left,
        and a watchdog cuts the connection should one still be waiting (a TLS handshake is
        several reads)."""
        assert self._client is not None
        self._admit(url, trusted, deadline)
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError(self._timeout_reason())
        started = time.monotonic()
        received = 0
        status = 0
        request = self._net.begin(deadline)
        watchdog = threading.Timer(left + WATCHDOG_GRACE, self._net.cut, args=(request,))
        watchdog.daemon = True
        watchdog.start()
        try:
            with self._client.stream("GET", url, headers=headers, timeout=left) as r:
                status = r.status_code
                if status in REDIRECT_STATUSES:
                    location = r.headers.get("location")
                    if not location:
                        raise FetchError(f"HTTP {status} redirect without a Location header")
                    return _Response(url, status), location
                if status == 304:
                    return _Response(url, 304), None
                if not 200 <= status < 300 or status in (204, 206):
                    raise FetchError(_status_reason(r), status)
                ctype = r.headers.get("content-type", "")
                _refuse_early(ctype)
                max_bytes = limit or self.max_bytes
                declared = r.headers.get("content-length", "")
                if limit is None and declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(_size_reason(int(declared), max_bytes, self.settings))
                encodings = _content_encodings(r.headers.get("content-encoding", ""))
                chunks: list[bytes] = []

                # Decoded here, a step at a time, so the limit applies to what a small
                # compressed bomb expands to, before it is in memory (httpx decodes each
                # network read whole).
                def check(produced: int) -> None:
                    if time.monotonic() > deadline:
                        raise FetchError(self._timeout_reason())
                    # The last layer is cut or refused below; one in between that puts out
                    # more than the limit is a bomb (compressed data is smaller than the page).
                    if produced > max_bytes + STREAM_CHUNK:
                        raise FetchError(_size_reason(produced, max_bytes, self.settings, True))

                for chunk in _decoded(r.iter_raw(), encodings, check):
                    if time.monotonic() > deadline:  # a server dripping bytes slowly
                        raise FetchError(self._timeout_reason())
                    received += len(chunk)
                    if received > max_bytes:
                        if limit is not None:
                            chunks.append(chunk[: len(chunk) - (received - max_bytes)])
                            break
                        raise FetchError(_size_reason(received, max_bytes, self.settings, True))
                    chunks.append(chunk)
                body = b"".join(chunks)
                etag, modified = r.headers.get("etag"), r.headers.get("last-modified")
                return _Response(url, status, ctype, body, etag, modified), None
        except FetchError as e:
            status = status or e.status  # a redirect the response hook refused
            raise
        except httpx.TimeoutException:
            raise FetchError(self._timeout_reason()) from None
        except httpx.InvalidURL as e:  # not an HTTPError
            raise FetchError(f"not a valid http(s) URL ({e})") from None
        except httpx.HTTPError as e:
            if time.monotonic() >= deadline:  # the watchdog cut the connection
                raise FetchError(self._timeout_reason()) from None
            raise FetchError(_transport_reason(e)) from None
        finally:
            watchdog.cancel()
            self._net.end()
            log.info(
                "GET %s -> %s, %s, %d ms",
                url,
                status or "no answer",
                _size(received),
                (time.monotonic() - started) * 1000,
            )

    def _budget_text(self) -> str:
        budget = FEED_BUDGET_TIMEOUTS * self.settings.web_timeout
        return f"the feed's time budget ({budget:g} s, {FEED_BUDGET_TIMEOUTS:g} x RAG_WEB_TIMEOUT)"

    def _budget_reason(self) -> str:
        return (
            f"not read: waiting for the site (its Crawl-delay) would outlast "
            f"{self._budget_text()}; the next run reads it"
        )

    def _timeout_reason(self) -> str:
        return (
            f"no complete answer within {self.settings.web_timeout:g} s (RAG_WEB_TIMEOUT); "
            "the site may be slow or down: try again later or raise the timeout"
        )

    def _wait_for_host(self, url: str) -> None:
        netloc = urlsplit(url).netloc.lower()
        last = self._last_request.get(netloc)
        robots_at = self._last_robots.get(netloc)
        if last is None and robots_at is None:
            return
        delay = self.settings.web_host_delay
        rules = self._robots.get(_origin(url))
        if rules and rules[0] is not None:
            crawl_delay = rules[0].crawl_delay(self.settings.web_user_agent)
            if crawl_delay:
                delay = max(delay, min(float(crawl_delay), MAX_CRAWL_DELAY))
        # The Crawl-delay spaces pages; robots.txt is followed by the host delay alone.
        due = max(
            last + delay if last is not None else -math.inf,
            robots_at + self.settings.web_host_delay if robots_at is not None else -math.inf,
        )
        pause = due - time.monotonic()
        if pause > 0 and time.monotonic() + pause >= self._until:
            # Waiting would outlast the feed's budget (a large Crawl-delay, say).
            raise FetchError(self._budget_reason())
        if pause > 0:
            time.sleep(pause)

    # ---- robots.txt

    def _check_robots(self, url: str, trusted: Origin, deadline: float) -> None:
        origin = _origin(url)
        if origin not in self._robots:
            loaded = self._load_robots(origin, trusted, deadline)
            if loaded[0] is None and time.monotonic() >= deadline:
                # This URL ran out of time (its lookup, a slow robots.txt): the site is not
                # closed for the run on that account; the next URL asks again.
                raise FetchError(self._timeout_reason())
            self._robots[origin] = loaded
        rules, unreachable = self._robots[origin]
        if rules is None:
            raise FetchError(
                f"{origin}/robots.txt could not be read ({unreachable}), so the site is treated "
                "as closed to robots for now (RFC 9309); try again later"
            )
        if not rules.can_fetch(self.settings.web_user_agent, url):
            raise FetchError(
                f"{origin}/robots.txt does not allow this page to robots; it is not read "
                "(set RAG_WEB_RESPECT_ROBOTS=false only with the site's permission)"
            )

    def _load_robots(
        self, origin: str, trusted: Origin, deadline: float
    ) -> tuple[urllib.robotparser.RobotFileParser | None, str]:
        """Rules for `origin`: from the cache when under a day old, else fetched."""
        key = f"{origin}/robots.txt"
        cached = self._open_cache.get(key)
        text: str | None = None
        if (
            cached
            and cached["kind"] == "robots"
            and time.time() - cached["value"]["at"] < ROBOTS_TTL
        ):
            text = cached["value"]["text"]
        else:
            try:
                response = self._robots_response(key, trusted, deadline)
            except FetchError as e:
                if 400 <= e.status < 500:  # RFC 9309 2.3.1.3: "unavailable" means no rules
                    text = ""
                else:  # 2.3.1.4: "unreachable" means disallow everything
                    return None, str(e)
            else:
                text = decode_text(response.body, response.content_type)
            self._open_cache.put(key, "robots", None, None, {"text": text, "at": time.time()})
        rules = urllib.robotparser.RobotFileParser(key)
        rules.parse(text.splitlines())
        return rules, ""

    def _robots_response(self, url: str, trusted: Origin, deadline: float) -> _Response:
        # RFC 9309 2.3.1.2: follow at least five redirects; the body is cut at the parse limit.
        current = url
        for _ in range(max(self.settings.web_max_redirects, 5) + 1):
            self._wait_for_host(current)
            try:
                response, location = self._request(
                    current,
                    trusted,
                    {"Accept": "text/plain, */*;q=0.5"},
                    deadline,
                    limit=ROBOTS_MAX_BYTES,
                )
            finally:
                # Kept apart from the pages' last request: the Crawl-delay it may ask for
                # spaces pages, and would otherwise hold the first page asked for that long.
                self._last_robots[urlsplit(current).netloc.lower()] = time.monotonic()
            if location is None:
                return response
            current = _redirect_target(current, location)
            if _scheme(current) not in HTTP_SCHEMES:
                raise FetchError(f"robots.txt redirected to {current[:200]}")
        raise FetchError("robots.txt redirected too often")


ACCEPT = (
    "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,"
    "application/xml;q=0.9,*/*;q=0.5"
)


def _redirect_target(base: str, location: str, status: int = 0) -> str:
    """`location` read against `base`; a FetchError naming it when it is no URL at all
    (urljoin raises ValueError on such as `http://[zz/x`)."""
    try:
        return urljoin(base, location.strip())
    except ValueError as e:
        raise FetchError(
            f"redirected to an invalid URL {location[:200]!r} ({e}); the site sends a broken "
            "redirect: ask it to fix the link, or give the page's own URL",
            status,
        ) from None


def _check_redirect(response: httpx.Response) -> None:
    """Refuse a redirect to another scheme before httpx parses its target (it raises on some,
    such as `javascript:`, even when it does not follow redirects)."""
    if response.status_code not in REDIRECT_STATUSES or "location" not in response.headers:
        return
    target = _redirect_target(
        str(response.request.url), response.headers["location"], response.status_code
    )
    if _scheme(target) not in HTTP_SCHEMES:
        raise FetchError(
            f"redirected to {target[:200]}; only http(s) redirects are followed",
            response.status_code,
        )
    try:
        httpx.URL(target)
    except httpx.InvalidURL as e:
        raise FetchError(
            f"redirected to an invalid URL {target[:200]!r} ({e})", response.status_code
        ) from None


def _without_fragment(url: str) -> str:
    return urlsplit(url)._replace(fragment="").geturl()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _scheme_refusal(url: str, how: str) -> str:
    scheme = _scheme(url) or "(none)"
    hint = "; give a local file as a path instead" if scheme == "file" else ""
    return f"a {scheme}: URL is {how}; only http(s) URLs are read{hint}"


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _refuse_early(content_type: str) -> None:
    """Refuse what can never be an article before reading its body."""
    media = _media_type(content_type)
    if media in FEED_TYPES or media in HTML_TYPES or media in SNIFF_TYPES:
        return
    if media.endswith("+xml") or media.startswith("text/"):
        return  # sniffed once read
    raise FetchError(_not_readable(media, b""))


def _kind(response: _Response) -> str:
    """'feed' or 'page' from the content type and, where servers are vague, the first bytes."""
    media = _media_type(response.content_type)
    head = response.body[:SNIFF_BYTES].lower()
    looks_feed = bool(FEED_ROOT.search(head))
    looks_html = bool(HTML_ROOT.search(head))
    if media in FEED_TYPES:
        return "feed"
    if media in HTML_TYPES:
        return "feed" if looks_feed and not looks_html else "page"
    if media in SNIFF_TYPES or media.endswith("+xml") or media.startswith("text/"):
        if looks_feed:
            return "feed"
        if looks_html:
            return "page"
    raise FetchError(_not_readable(media, response.body))


def _not_readable(media: str, body: bytes) -> str:
    head = body[:16].lstrip()
    if head.startswith(b"%PDF") or media == "application/pdf":
        what = "a PDF document"
    elif media.startswith("image/") or head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        what = "an image"
    elif media.endswith("json") or head[:1] in (b"{", b"["):
        what = "JSON data"
    elif media.startswith(("audio/", "video/")):
        what = "audio or video"
    elif media.endswith("xml") or head.startswith(b"<?xml"):
        what = "XML that is not an RSS or Atom feed"
    else:
        what = "not a web page"
    label = media or "no content type"
    return f"{what} ({label}); only HTML pages and RSS/Atom feeds are read"


# What a hostile or broken answer can still raise past the checks here (a URL urllib cannot
# parse, a decoder or parser recursing too deep...): one URL fails, never the run.
UNEXPECTED: tuple[type[Exception], ...] = (
    ValueError,
    RecursionError,
    OverflowError,
    OSError,
    LookupError,
    httpx.HTTPError,
    httpx.InvalidURL,
    httpx.StreamError,
    httpcore.ProtocolError,
)


def _unexpected(url: str, e: BaseException) -> FetchError:
    log.warning("%s: unexpected %s", url, type(e).__name__, exc_info=True)
    return FetchError(
        f"{url[:200]} could not be read ({type(e).__name__}: {str(e)[:200]}); the site sent "
        "something this reader cannot handle: try again later, and report it if it persists"
    )


def _status_reason(r: httpx.Response) -> str:
    status = r.status_code
    text = f"HTTP {status} {r.reason_phrase}".strip()
    if status == 429:
        return f"{text}: the site asks to slow down; raise RAG_WEB_HOST_DELAY and try later"
    if status in (401, 403):
        return f"{text}: the site does not let this page be read"
    if status in (404, 410):
        return f"{text}: no such page; check the URL"
    if status >= 500:
        return f"{text}: the site failed; try again later"
    return text


def _transport_reason(e: httpx.HTTPError) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in str(e) or "certificate verify failed" in str(e):
        return (
            f"a TLS certificate problem: the site's certificate is not trusted ({e}); it may "
            "be self-signed, expired or for another name. Check the URL, or ask the site to fix "
            "its certificate"
        )
    if isinstance(e, httpx.ConnectError):
        return f"cannot connect ({e}); check the address and your network"
    if isinstance(e, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return f"not a valid http(s) URL ({e})"
    return f"the connection failed ({type(e).__name__}: {e}); try again later"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _size_reason(n: int, limit: int, settings: Settings, streamed: bool = False) -> str:
    what = f"over {limit / 1e6:g} MB, stopped reading" if streamed else f"{n / 1e6:.1f} MB"
    return (
        f"the response is {what}; over the {settings.web_max_page_mb:g} MB limit "
        "(raise RAG_WEB_MAX_PAGE_MB if it really is one article)"
    )


def _bozo_reason(exc: object) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


# ---- text


def decode_html(body: bytes, content_type: str) -> str:
    """The page's text: BOM, then the declared charset (header, then <meta>), then UTF-8, then a
    guess; a charset that does not fit the bytes is skipped rather than trusted."""
    head = body[:SNIFF_BYTES]
    meta = META_CHARSET.search(head)
    return _decode(body, content_type, meta.group(1).decode("ascii", "ignore") if meta else None)


def decode_text(body: bytes, content_type: str) -> str:
    return _decode(body, content_type, None)


def _decode(body: bytes, content_type: str, meta_charset: str | None) -> str:
    candidates = [enc for bom, enc in BOMS if body.startswith(bom)]
    declared = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.I)
    candidates += [declared.group(1) if declared else "", meta_charset or "", "utf-8"]
    for name in candidates:
        name = CHARSET_ALIASES.get(name.lower(), name)
        if not name:
            continue
        try:
            return body.decode(codecs.lookup(name).name)
        except (LookupError, UnicodeDecodeError):
            continue
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # a dependency of trafilatura's, but fall back all the same
        best = None
    else:
        best = from_bytes(body).best()
    if best is not None:
        return str(best)
    return body.decode("cp1252", errors="replace")


def _extract(html: str, url: str) -> Article:
    if len(html) > MAX_EXTRACT_CHARS:
        log.info(
            "%s: %d characters of HTML, the first %d extracted", url, len(html), MAX_EXTRACT_CHARS
        )
        html = html[:MAX_EXTRACT_CHARS]
    doc = extract_html(html, url=url)
    text = (doc.text or "").strip() if doc is not None else ""
    if doc is None or len(text) < MIN_ARTICLE_CHARS:
        raise FetchError(
            f"no article text found on this page ({len(text)} characters; an index page, or "
            "one that needs JavaScript)"
        )
    canonical = url
    if doc.url:
        claimed = urljoin(url, doc.url)
        if _scheme(claimed) in HTTP_SCHEMES and _same_origin(claimed, url):
            canonical = claimed
        else:
            log.debug("%s: canonical link %s is on another origin; not used", url, claimed)
    canonical = canonical_url(canonical)
    authors = [a.strip() for a in re.split(r"[;,]", doc.author or "") if a.strip()]
    return Article(
        id=canonical,
        text=text,
        title=(doc.title or "").strip(),
        source=_site(canonical),
        url=canonical,
        date=normalise_date(doc.date),
        authors=authors,
    )


def _usable(row: dict | None) -> dict | None:
    """A cache row a 304 can stand for, with its content decoded; else None (asked afresh)."""
    if row is None:
        return None
    if row["kind"] == "page":
        row["article"] = _article_from_cache(row["value"])
        return row if row["article"] is not None else None
    if row["kind"] == "feed":
        try:
            row["entries"] = [_Entry(**e) for e in row["value"]]
        except TypeError:  # written by another version
            return None
        return row
    return None  # robots.txt rules are kept by age, not validators


def _article_from_cache(value: dict) -> Article | None:
    try:
        article = Article(**{k: value[k] for k in CACHED_FIELDS})
    except (KeyError, TypeError):  # written by an older version: fetched again
        return None
    return article if isinstance(article.text, str) and article.text else None


_ENTITY_DECLARATION = re.compile(rb"<!ENTITY|<!DOCTYPE[^>\[]*\[", re.I)


def _declares_entities(body: bytes) -> bool:
    """An internal DTD subset or entity declaration (a DOCTYPE naming an external DTD alone,
    as RSS 0.91 feeds do, is harmless: it is never fetched)."""
    texts = [body]
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or body[:2] in (
        b"<\0",
        b"\0<",
    ):
        for encoding in ("utf-16-le", "utf-16-be"):
            texts.append(body.decode(encoding, "ignore").encode("utf-8", "ignore"))
    return any(_ENTITY_DECLARATION.search(t) for t in texts)


_AMPERSAND = re.compile(
    rb"<!\[CDATA\[.*?\]\]>|&(#[0-9]+;|#[xX][0-9a-fA-F]+;|([A-Za-z][A-Za-z0-9]*);)?", re.S
)
_XML_ENTITIES = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})


def _xml_ampersands(body: bytes) -> bytes:
    """HTML's named entities as character references and bare & as &amp;, outside CDATA."""

    def fix(m: re.Match[bytes]) -> bytes:
        whole, ref, name = m.group(0), m.group(1), m.group(2)
        if whole.startswith(b"<!") or (ref and (name is None or name in _XML_ENTITIES)):
            return whole
        if name is not None:
            char = html.entities.html5.get(name.decode("ascii") + ";")
            if char is not None:
                return "".join(f"&#{ord(c)};" for c in char).encode("ascii")
        return b"&amp;" + (ref or b"")

    return _AMPERSAND.sub(fix, body)


def _capped(text: str) -> str:
    text = " ".join(text.split()) if len(text) > MAX_FIELD_CHARS else text
    return text if len(text) <= MAX_FIELD_CHARS else text[: MAX_FIELD_CHARS - 1] + "…"


def _entry(e: dict, feed_url: str) -> _Entry:
    link = (e.get("link") or "").strip()
    if link:
        link = urljoin(feed_url, link)
    when = dict.get(e, "published_parsed") or dict.get(e, "updated_parsed")
    if when and calendar.timegm(when) > time.time() + FUTURE_SKEW_SECONDS:
        when = None  # no story is published in the future: a feed saying so is not believed
    authors = [a.get("name", "").strip() for a in e.get("authors", []) if a.get("name")]
    if not authors and e.get("author"):
        authors = [e["author"].strip()]
    authors = [_capped(a) for a in authors[:MAX_AUTHORS]]
    title = _capped((e.get("title") or "").strip())
    # dict.get: feedparser's own get maps "updated" to "published", with a warning.
    version = "|".join([dict.get(e, "updated") or "", dict.get(e, "published") or "", title])
    return _Entry(
        link=link,
        title=title,
        date=time.strftime("%Y-%m-%d", when) if when else "",
        authors=authors,
        version=version,
    )


def _with_entry(article: Article, entry: _Entry, feed: str) -> Article:
    """The page's article, with the feed filling only the title, date and authors the page
    lacks, and only for a page on the feed's own origin: any feed may list any URL, and must
    not retitle, redate or re-attribute another site's story."""
    own = _same_origin(article.url, feed)
    return Article(
        id=article.id,
        text=article.text,
        title=article.title or (entry.title if own else ""),
        source=article.source,
        url=article.url,
        date=article.date or (entry.date if own else ""),
        authors=article.authors or (entry.authors if own else []),
        path=feed,
    )
