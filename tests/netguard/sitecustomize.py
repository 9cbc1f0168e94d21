"""Loopback-only networking for the test run, in pytest and in every Python process it starts.

Tests may talk to 127.0.0.0/8 and ::1 only, on any machine (on a cloud VM 169.254.169.254 answers
with credentials). conftest.py installs this guard in the pytest process and puts this folder on
PYTHONPATH, so Python imports it as `sitecustomize` in the servers and CLIs the tests start too.

- A connection or datagram to any other address is refused (OSError) and recorded; conftest fails
  the test that made it.
- Name lookups other than "localhost" (even "localhost.") are answered "unknown name" without
  asking a resolver: a lookup is itself traffic to a DNS server off this host.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import traceback

ENV = "RAG_TEST_NETGUARD_LOG"
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
violations: list[str] = []


def is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host.lower().rstrip(".") in _LOCAL_NAMES
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _is_numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _hosts_file_name(host: str) -> bool:
    # Only a name /etc/hosts answers: "localhost." or "ip6-localhost" would go on to DNS.
    return host.lower() == "localhost"


def _refuse(what: str) -> OSError:
    message = f"test network guard: {what} refused (tests may reach 127.0.0.0/8 and ::1 only)"
    violations.append(message + "\n" + "".join(traceback.format_stack(limit=12)[:-2]))
    log = os.environ.get(ENV)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"pid {os.getpid()}: {message}\n")
    return OSError(errno.ENETUNREACH, message)


def _check(sock: socket.socket, address: object, verb: str) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # Unix sockets stay on this host
    host = address[0] if isinstance(address, tuple) and address else address
    if not is_loopback(host):
        raise _refuse(f"{verb} to {address!r}")


def install() -> None:
    if getattr(socket, "_rag_netguard", False):
        return
    socket._rag_netguard = True  # type: ignore[attr-defined]
    cls = socket.socket
    connect, connect_ex, sendto = cls.connect, cls.connect_ex, cls.sendto
    real_getaddrinfo, real_gethostbyname = socket.getaddrinfo, socket.gethostbyname

    def guarded_connect(self, address):
        _check(self, address, "connect")
        return connect(self, address)

    def guarded_connect_ex(self, address):
        _check(self, address, "connect")
        return connect_ex(self, address)

    def guarded_sendto(self, data, *args):
        _check(self, args[-1], "sendto")
        return sendto(self, data, *args)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode("idna")
        if host is None or _is_numeric(host) or _hosts_file_name(host):
            return real_getaddrinfo(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, f"test network guard: no lookup of {host!r}")

    def guarded_gethostbyname(host):
        if _is_numeric(host) or _hosts_file_name(host):
            return real_gethostbyname(host)
        raise socket.gaierror(socket.EAI_NONAME, f"test network guard: no lookup of {host!r}")

    cls.connect = guarded_connect  # type: ignore[method-assign]
    cls.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    cls.sendto = guarded_sendto  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo
    socket.gethostbyname = guarded_gethostbyname


if os.environ.get(ENV):
    install()
