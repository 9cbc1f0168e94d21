"""A damaged keyword index (issue 21, item 4): verify reports it, repair and search rebuild it.

Real store, real embedding model, real Tantivy files, damaged the way a user's disk or a stray
`rm` damages them.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rag.embeddings import LOCAL_DIM, LOCAL_MODEL_NAME
from rag.ingest import Ingestor
from rag.integrity import repair, verify
from rag.keyword import KeywordIndex
from rag.store import open_store
from tests.conftest import ROOT, write

pytestmark = pytest.mark.e2e  # the real embedding model (and store) throughout

SEGMENT_FILES = ("*.term", "*.idx", "*.store", "*.fast", "*.fieldnorm", "*.pos")


@pytest.fixture
def ingestor(settings, embed):
    return Ingestor(settings, open_store(settings, LOCAL_MODEL_NAME, LOCAL_DIM), embed)


@pytest.fixture
def built(tmp_path, ingestor) -> KeywordIndex:
    """Four one-chunk articles, and a keyword index built over them."""
    src = tmp_path / "src"
    for i, word in enumerate(["lighthouse", "ferry", "orchard", "tramway"]):
        write(src / f"{i}.md", f"---\nid: k{i}\n---\nThe {word} of Velmora reopened in May.\n")
    assert ingestor.run([src], progress=False).ok
    kw = KeywordIndex(ingestor.store, ingestor.settings.keyword_dir)
    assert [h.chunk_id for h in kw.search("orchard", 3)] == ["k2#0"]
    return kw


def _remove(folder: Path, patterns: tuple[str, ...]) -> int:
    gone = [f for p in patterns for f in folder.glob(p)]
    for f in gone:
        f.unlink()
    return len(gone)


def _fresh(kw: KeywordIndex) -> KeywordIndex:
    """The same index as another process (a new `rag ask`, a restarted server) opens it."""
    return KeywordIndex(kw.store, kw.folder.parent)


def test_deleted_tantivy_files_are_reported_and_repaired(built, ingestor, embed, tmp_path):
    shutil.rmtree(built.terms_dir)
    report = verify(ingestor.store, _fresh(built))
    assert not report.ok
    assert report.keyword_damage and "missing" in report.keyword_damage[0]
    fixed = repair(ingestor.store, embed, tmp_path / "data", _fresh(built), report)
    assert fixed.keyword_rebuilt and fixed.after is not None and fixed.after.ok
    assert [h.chunk_id for h in _fresh(built).search("ferry", 3)] == ["k1#0"]


def test_segment_files_gone_with_meta_kept_never_raise(built, ingestor, embed, tmp_path):
    assert _remove(built.terms_dir, SEGMENT_FILES) > 0
    assert (built.terms_dir / "meta.json").exists()
    report = verify(ingestor.store, _fresh(built))  # raised "Failed to open file" before
    assert not report.ok and "cannot be read" in report.keyword_damage[0]
    fixed = repair(ingestor.store, embed, tmp_path / "data", _fresh(built), report)
    assert fixed.after is not None and fixed.after.ok
    assert [h.chunk_id for h in _fresh(built).search("tramway", 3)] == ["k3#0"]


@pytest.mark.parametrize("damage", ["folder", "segments", "meta", "positions"])
def test_a_search_rebuilds_a_damaged_index_with_a_warning(built, caplog, damage):
    if damage == "folder":
        shutil.rmtree(built.terms_dir)  # opened empty, it would find nothing
    elif damage == "segments":
        _remove(built.terms_dir, SEGMENT_FILES)  # cannot be opened
    elif damage == "meta":
        (built.terms_dir / "meta.json").write_text('{"segm')  # cannot be parsed
    else:
        _remove(built.terms_dir, ("*.pos",))  # opens, but the first search fails
    with caplog.at_level(logging.WARNING, logger="rag.keyword"):
        hits = _fresh(built).search("lighthouse", 3)
    assert [h.chunk_id for h in hits] == ["k0#0"]
    assert any("rebuilding it from the store" in r.getMessage() for r in caplog.records)


def _drop_from_tantivy(kw: KeywordIndex, chunk_id: str) -> None:
    import tantivy

    writer = tantivy.Index.open(str(kw.terms_dir)).writer(heap_size=15_000_000, num_threads=1)
    writer.delete_documents_by_term("chunk_id", chunk_id)
    writer.commit()
    writer.wait_merging_threads()


def test_an_index_that_lost_a_chunk_is_out_of_step_for_that_article(built, ingestor, embed):
    """The article's fingerprint is still there, one of its chunks is not: before, verify only
    compared fingerprints and said the store was consistent."""
    _drop_from_tantivy(built, "k1#0")
    with sqlite3.connect(built.path) as conn:
        conn.execute("DELETE FROM chunks WHERE chunk_id = 'k1#0'")
    kw = _fresh(built)
    assert kw.articles()["k1"]  # its fingerprint is held
    report = verify(ingestor.store, kw)
    assert report.keyword_out_of_step == ["k1"]
    fixed = repair(ingestor.store, embed, ingestor.settings.data_dir, kw, report)
    assert fixed.keyword_fixed == 1 and fixed.after is not None and fixed.after.ok
    assert [h.chunk_id for h in kw.search("ferry", 3)] == ["k1#0"]


def test_tantivy_holding_other_chunks_than_its_bookkeeping_is_damage(built, ingestor):
    _drop_from_tantivy(built, "k2#0")  # the bookkeeping still lists it
    damage = verify(ingestor.store, _fresh(built)).keyword_damage
    assert damage and "holds 3 chunks where its bookkeeping holds 4" in damage[0]


def test_the_cli_reports_and_repairs_without_a_traceback(built, ingestor):
    data = ingestor.settings.data_dir
    _remove(built.terms_dir, SEGMENT_FILES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["RAG_DATA_DIR"] = str(data)

    def rag(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "rag.cli", *args]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

    checked = rag("status", "--verify")
    assert checked.returncode == 1, checked.stderr
    assert "keyword index damaged" in checked.stdout and "Traceback" not in checked.stderr
    repaired = rag("status", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "keyword index built again" in repaired.stdout
    again = rag("status", "--verify")
    assert again.returncode == 0 and "The store is consistent." in again.stdout


def test_a_never_built_index_is_not_damage(ingestor, tmp_path):
    write(tmp_path / "one" / "a.md", "---\nid: solo\n---\nThe quarry closed for winter.\n")
    assert ingestor.run([tmp_path / "one"], progress=False).ok
    kw = KeywordIndex(ingestor.store, tmp_path / "kw-new")
    assert verify(ingestor.store, kw).ok  # nothing built yet: verify builds it
    assert sqlite3.connect(kw.path).execute("SELECT count(*) FROM chunks").fetchone()[0] == 1


# Review of the hardening (issue 21 section 4): damage that passed verify, or crashed every command.


def _flip_first_byte(path: Path) -> None:
    """Invert one byte, keeping the size: the index still opens and answers (wrongly)."""
    b = bytearray(path.read_bytes())
    b[0] ^= 0xFF
    path.write_bytes(bytes(b))


def test_a_flipped_byte_in_the_postings_fails_the_checksum(built, ingestor, embed, caplog):
    files = list(built.terms_dir.glob("*.idx"))  # postings; every read of them still works
    assert files
    for f in files:
        _flip_first_byte(f)
    report = verify(ingestor.store, _fresh(built))
    assert not report.ok and "checksum" in report.keyword_damage[0]
    fixed = repair(ingestor.store, embed, ingestor.settings.data_dir, _fresh(built), report)
    assert fixed.keyword_rebuilt and fixed.after is not None and fixed.after.ok
    for f in built.terms_dir.glob("*.fieldnorm"):
        _flip_first_byte(f)  # found when a process opens the index, too
    with caplog.at_level(logging.WARNING, logger="rag.keyword"):
        assert [h.chunk_id for h in _fresh(built).search("orchard", 3)] == ["k2#0"]
    assert any("checksums do not match" in r.getMessage() for r in caplog.records)


def _damage_state(kw: KeywordIndex, how: str) -> None:
    kw._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    kw._conn().close()
    for f in kw.folder.glob("state.sqlite3-*"):
        f.unlink()
    if how == "garbage":
        kw.path.write_bytes(b"Velmora ledger, water-stained. " * 300)
    else:
        with kw.path.open("r+b") as f:
            f.truncate(2048)


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_corrupt_bookkeeping_database_is_reported_and_rebuilt(
    built, ingestor, embed, caplog, how
):
    _damage_state(built, how)
    report = verify(ingestor.store, _fresh(built))  # raised "file is not a database" before
    assert not report.ok and "bookkeeping" in report.keyword_damage[0]
    fixed = repair(ingestor.store, embed, ingestor.settings.data_dir, _fresh(built), report)
    assert fixed.keyword_rebuilt and fixed.after is not None and fixed.after.ok
    assert list(built.folder.glob("state.sqlite3.damaged-*"))  # moved aside, not deleted
    _damage_state(_fresh(built), how)
    with caplog.at_level(logging.WARNING, logger="rag.keyword"):
        assert [h.chunk_id for h in _fresh(built).search("ferry", 3)] == ["k1#0"]
    assert any("cannot be read" in r.getMessage() for r in caplog.records)


def _cursor_ahead(kw: KeywordIndex) -> None:
    with sqlite3.connect(kw.path) as conn:
        conn.execute("UPDATE state SET value = '999999' WHERE key = 'cursor'")


def _add_article(ingestor, tmp_path: Path, name: str) -> None:
    src = tmp_path / name
    write(src / "n.md", f"---\nid: {name}\n---\nThe {name} of Velmora opened in June.\n")
    assert ingestor.run([src], progress=False).ok


def test_a_cursor_ahead_of_the_change_log_is_damage(built, ingestor, embed, tmp_path):
    """A store restored from a backup: the index would skip every change up to its cursor."""
    _cursor_ahead(built)
    report = verify(ingestor.store, _fresh(built))
    assert not report.ok and "ahead" in report.keyword_damage[0]
    fixed = repair(ingestor.store, embed, ingestor.settings.data_dir, _fresh(built), report)
    assert fixed.keyword_rebuilt and fixed.after is not None and fixed.after.ok
    _cursor_ahead(built)
    _add_article(ingestor, tmp_path, "funicular")  # found when a process opens the index
    assert [h.chunk_id for h in _fresh(built).search("funicular", 3)] == ["funicular#0"]


def test_a_running_process_survives_its_tantivy_folder_being_deleted(
    built, ingestor, tmp_path, caplog
):
    shutil.rmtree(built.terms_dir)
    _add_article(ingestor, tmp_path, "aqueduct")
    with caplog.at_level(logging.WARNING, logger="rag.keyword"):
        hits = built.search("aqueduct", 3)  # raised "Failed to acquire Lockfile" before
    assert [h.chunk_id for h in hits] == ["aqueduct#0"]
    assert any("rebuilding it from the store" in r.getMessage() for r in caplog.records)
    assert [h.chunk_id for h in built.search("orchard", 3)] == ["k2#0"]
