"""The loopback-only guard: nothing a test runs may reach beyond 127.0.0.0/8 and ::1.

The guard is exercised in `python -S` children whose real socket calls are replaced by recorders
first, so even a broken guard sends nothing anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

GUARD = Path(__file__).parent / "netguard" / "sitecustomize.py"

_CHILD = r"""
import importlib.util, json, socket, sys
calls = []
def record(kind):
    def call(*args, **kwargs):
        calls.append(kind)
        raise ConnectionRefusedError(kind)
    return call
socket.socket.connect = record("connect")
socket.socket.connect_ex = record("connect")
socket.socket.sendto = record("sendto")
socket.getaddrinfo = record("lookup")
spec = importlib.util.spec_from_file_location("guard", sys.argv[1])
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)
guard.install()
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = "passed"
    except socket.gaierror as e:
        out[name] = "no-lookup" if "guard" in str(e) else "lookup:" + str(e)
    except OSError as e:
        out[name] = "refused" if "guard" in str(e) else "sent:" + str(e)
s4 = socket.socket()
s6 = socket.socket(socket.AF_INET6)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
attempt("link-local", lambda: s4.connect(("169.254.169.254", 80)))
attempt("private", lambda: s4.connect_ex(("10.0.0.1", 80)))
attempt("any", lambda: s4.connect(("0.0.0.0", 80)))
attempt("public6", lambda: s6.connect(("2001:db8::1", 80, 0, 0)))
attempt("mapped", lambda: s6.connect(("::ffff:192.0.2.1", 80, 0, 0)))
attempt("udp", lambda: udp.sendto(b"x", ("192.0.2.1", 53)))
attempt("name", lambda: socket.getaddrinfo("news.example", 80))
attempt("dotted", lambda: socket.getaddrinfo("localhost.", 80))
attempt("loopback", lambda: s4.connect(("127.0.0.5", 9)))
attempt("loopback6", lambda: s6.connect(("::1", 9, 0, 0)))
attempt("localhost", lambda: socket.getaddrinfo("localhost", 80))
print(json.dumps({"out": out, "calls": calls, "violations": len(guard.violations)}))
"""


def _run_child(tmp_path: Path) -> dict:
    env = {**os.environ, "RAG_TEST_NETGUARD_LOG": str(tmp_path / "guard.log")}
    done = subprocess.run(
        [sys.executable, "-S", "-c", _CHILD, str(GUARD)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_guard_refuses_everything_beyond_loopback_before_it_is_sent(tmp_path):
    result = _run_child(tmp_path)
    out = result["out"]
    for name in ("link-local", "private", "any", "public6", "mapped", "udp"):
        assert out[name] == "refused", (name, out)
    assert out["name"] == out["dotted"] == "no-lookup"
    # Loopback goes through to the real call (here a recorder that refuses).
    assert out["loopback"] == out["loopback6"] == "sent:connect"
    assert out["localhost"] == "sent:lookup"  # reached the real (recorded) lookup
    assert result["calls"] == ["connect", "connect", "lookup"]
    assert result["violations"] == 6
    logged = (tmp_path / "guard.log").read_text().splitlines()
    assert len(logged) == 6 and all("169.254" in logged[0] or "refused" in x for x in logged)


def test_children_of_the_test_run_carry_the_guard():
    probe = "import socket; print(getattr(socket, '_rag_netguard', False))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True", done.stderr
