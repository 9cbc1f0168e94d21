"""`rag watch`: re-ingest on a schedule, new and changed articles only, at a lower CPU priority."""

import os
import subprocess
import sys
import time

import pytest

from rag.errors import InvalidInput
from rag.watch import parse_interval
from tests.news_fixture import write_corpus


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("2h", 7200), ("15", 15)])
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5s", "-1m", "10 minutes"])
def test_bad_intervals_say_what_is_expected(text):
    with pytest.raises(InvalidInput, match="--every"):
        parse_interval(text)


def _niceness(pid: int) -> int:
    # Field 19 of /proc/PID/stat, counted after the command name's closing parenthesis.
    stat = open(f"/proc/{pid}/stat").read()
    return int(stat.rsplit(")", 1)[1].split()[16])


@pytest.mark.e2e
def test_watch_ingests_what_is_new_each_run_at_low_priority(tmp_path):
    folder = write_corpus(tmp_path / "news")
    n = len(list(folder.glob("*.md")))
    env = dict(os.environ, RAG_DATA_DIR=str(tmp_path / "data"), RAG_WATCH_NICE="7")
    cmd = [sys.executable, "-m", "rag.cli", "watch", str(folder), "--every", "10s", "--runs", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # the first run's line
        assert f"{n} added, 0 updated, 0 unchanged" in first, first
        assert _niceness(proc.pid) == _niceness(os.getpid()) + 7
        (folder / "ferry.md").write_text(
            "---\ntitle: Ferry line opens\ndate: 2024-08-01\n---\n\n"
            "A ferry line between Portmere and Lindholm opened on Monday.\n"
        )
        time.sleep(0.5)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"1 added, 0 updated, {n} unchanged, 0 removed, 0 failed" in out, out


def test_a_watch_run_logs_its_warnings(caplog):
    """A feed that suddenly lists far fewer entries is a warning of the run, not an error:
    `rag watch` must still say so."""
    from rag.ingest import IngestReport
    from rag.watch import Watcher

    class Ingestor:
        def run(self, sources, progress=False):
            return IngestReport(warnings=["http://127.0.0.1:1/feed.xml: the feed lists 3 entries"])

    with caplog.at_level("WARNING", logger="rag.watch"):
        Watcher(Ingestor(), ["http://127.0.0.1:1/feed.xml"], every=60).run_once()
    assert "the feed lists 3 entries" in caplog.text
