"""The keyword index follows the store article by article; integrity verify and repair.

Real Chroma store, real embedding model, real SQLite index.
"""

from __future__ import annotations

import sqlite3

import pytest

from rag.embeddings import LOCAL_DIM, LOCAL_MODEL_NAME
from rag.ingest import Ingestor
from rag.keyword import KeywordIndex
from rag.store import open_store
from tests.conftest import CORPUS, write

pytestmark = pytest.mark.e2e  # the real embedding model (and store) throughout


@pytest.fixture
def ingestor(settings, embed):
    return Ingestor(settings, open_store(settings, LOCAL_MODEL_NAME, LOCAL_DIM), embed)


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "src"
    for i, word in enumerate(["mayor", "ferry", "harbour", "tram"]):
        write(
            folder / f"{i}.md",
            f"---\nid: d{i}\nsource: s{i % 2}.com\ndate: 2024-05-0{i + 1}\n"
            f"---\nThe {word} story number {i} ran on page {i}.\n",
        )
    return folder


@pytest.fixture
def reads(monkeypatch):
    """Counts the chunks the keyword index reads from the store, by way of access."""
    from rag.store import ArticleStore

    seen = {"all": 0, "articles": []}
    all_chunks, article_chunks = ArticleStore.all_chunks, ArticleStore.article_chunks

    def spy_all(self):
        for row in all_chunks(self):
            seen["all"] += 1
            yield row

    def spy_articles(self, doc_ids, embeddings=False):
        seen["articles"] += list(doc_ids)
        yield from article_chunks(self, doc_ids, embeddings)

    monkeypatch.setattr(ArticleStore, "all_chunks", spy_all)
    monkeypatch.setattr(ArticleStore, "article_chunks", spy_articles)
    return seen


def _kw(ingestor, tmp_path) -> KeywordIndex:
    return KeywordIndex(ingestor.store, tmp_path / "kw")


def test_add_change_remove_update_only_that_article(tmp_path, ingestor, src, reads):
    ingestor.run([src], progress=False)
    kw = _kw(ingestor, tmp_path)
    assert [h.chunk_id for h in kw.search("ferry", 5)] == ["d1#0"]
    assert reads["all"] == ingestor.store.count()  # the first search builds it once

    write(src / "4.md", "---\nid: d4\n---\nA zebra escaped from the zoo.\n")
    ingestor.run([src], progress=False)
    ingestor.store.refresh(max_age=0)
    assert [h.chunk_id for h in kw.search("zebra", 5)] == ["d4#0"]
    assert reads["articles"] == ["d4"]

    write(src / "1.md", "---\nid: d1\n---\nThe ferry became a bus.\n")
    ingestor.run([src], progress=False)
    ingestor.store.refresh(max_age=0)
    assert [h.chunk_id for h in kw.search("bus", 5)] == ["d1#0"]
    (src / "0.md").unlink()
    ingestor.run([src], prune=True, progress=False)
    ingestor.store.refresh(max_age=0)
    assert kw.search("mayor", 5) == []
    assert reads["articles"] == ["d4", "d1", "d0"]
    assert reads["all"] == 4  # never read whole again
    assert kw.chunk_count() == ingestor.store.count() == 4


def test_filters_by_source_and_date(tmp_path, ingestor, src):
    ingestor.run([src], progress=False)
    kw = _kw(ingestor, tmp_path)
    assert {h.chunk_id for h in kw.search("story", 10)} == {"d0#0", "d1#0", "d2#0", "d3#0"}
    assert {h.chunk_id for h in kw.search("story", 10, source="s1.com")} == {"d1#0", "d3#0"}
    got = kw.search("story", 10, since=20240502, until=20240503)
    assert {h.chunk_id for h in got} == {"d1#0", "d2#0"}


def test_a_store_without_a_change_log_is_indexed_once(tmp_path, ingestor, embed, reads):
    """Stores written before the log existed: the first search builds from the whole store."""
    from rag.ingest import write_articles

    nodes = []
    from rag.articles import read_sources
    from rag.clean import clean_text
    from rag.ingest import _Pending, chunk_nodes

    for art in read_sources([CORPUS], 10**7):
        art.text = clean_text(art.text)
        nodes += chunk_nodes(_Pending(art, art.fingerprint(), ingestor.chunker.split(art.text), 0))
    vectors = embed.get_text_embedding_batch([n.get_content("embed") for n in nodes])
    write_articles(ingestor.store, nodes, vectors)  # no log entry, as an old version wrote
    kw = _kw(ingestor, tmp_path)
    assert kw.search("Kremlin", 5)
    assert reads["all"] == len(nodes) and kw.chunk_count() == len(nodes)
    again = KeywordIndex(ingestor.store, tmp_path / "kw")  # another process: the file is reused
    assert again.search("Kremlin", 5) and reads["all"] == len(nodes)


def test_verify_finds_damage_and_repair_rewrites_only_the_damaged(tmp_path, ingestor, embed):
    from rag.integrity import repair, verify

    ingestor.run([CORPUS], progress=False)
    store = ingestor.store
    kw = _kw(ingestor, tmp_path)
    clean = verify(store, kw)
    assert clean.ok and clean.chunks == store.count() and clean.articles == 2
    a, b = sorted(store.indexed())
    n_b = store.indexed()[b].n_chunks
    # Damage: one article loses a body chunk, a crash leaves a stray chunk without a marker,
    # and the keyword index misses an article.
    store._collection.delete(ids=[f"{b}#1"])
    store.upsert(
        ids=["ghost#1"],
        embeddings=embed.get_text_embedding_batch(["a stray chunk"]),
        documents=["a stray chunk"],
        metadatas=[{"doc_id": "ghost", "chunk_index": 1}],
    )
    conn = sqlite3.connect(kw.path)
    conn.execute("DELETE FROM docs WHERE doc_id = ?", (a,))
    conn.commit()
    report = verify(store, kw)
    assert not report.ok
    assert set(report.incomplete) == {b, "ghost"}
    assert f"{n_b - 1} of its {n_b}" in report.incomplete[b]
    assert a in report.keyword_out_of_step
    fixed = repair(store, embed, tmp_path / "data", kw, report)
    assert sorted(fixed.removed) == sorted([b, "ghost"]) and fixed.rewritten == []
    assert fixed.keyword_fixed >= 1
    assert fixed.after is not None and fixed.after.ok, fixed.after
    # The removed article comes back with the next ingestion.
    again = ingestor.run([CORPUS], progress=False)
    assert again.articles.added == 1 and verify(store, kw).ok


def test_repair_re_embeds_an_article_whose_chunks_are_all_there(tmp_path, ingestor, embed):
    from rag.integrity import IntegrityReport, repair

    ingestor.run([CORPUS], progress=False)
    store = ingestor.store
    doc = sorted(store.indexed())[0]
    before = {c: v for c, _, _, v in store.article_chunks([doc], embeddings=True)}
    # A damaged vector index, as verify reports it: the article is rewritten from its text.
    report = IntegrityReport(unfindable=[f"{doc}#0"])
    fixed = repair(store, embed, tmp_path / "data", report=report)
    assert fixed.rewritten == [doc] and fixed.after is not None and fixed.after.ok
    after = {c: v for c, _, _, v in store.article_chunks([doc], embeddings=True)}
    assert set(after) == set(before)
    # Re-embedded from the same text with the same template: the same vectors.
    assert all(abs(x - y) < 1e-4 for c in before for x, y in zip(before[c], after[c], strict=True))


def test_the_store_knows_its_newest_article_date(ingestor, src):
    assert ingestor.store.newest_date() == 0
    ingestor.run([src], progress=False)
    assert ingestor.store.newest_date() == 20240504
    write(src / "old.md", "---\nid: old\ndate: 2020-01-01\n---\nAn old story about a tram.\n")
    ingestor.run([src], progress=False)
    assert ingestor.store.newest_date() == 20240504


def test_old_log_entries_are_trimmed_and_a_reader_behind_them_rebuilds(
    tmp_path, ingestor, src, reads
):
    import time

    from rag.store import LOG_KEEP_SECONDS

    ingestor.run([src], progress=False)
    current = _kw(ingestor, tmp_path)
    behind = KeywordIndex(ingestor.store, tmp_path / "kw-behind")
    assert behind.search("ferry", 5) and current.search("ferry", 5)  # both built, in step
    write(src / "4.md", "---\nid: d4\n---\nA zebra escaped from the zoo.\n")
    ingestor.run([src], progress=False)
    ingestor.store.refresh(max_age=0)
    assert [h.chunk_id for h in current.search("zebra", 5)] == ["d4#0"]  # current reads d4

    store = ingestor.store
    entries = len(store.changes_since(0))
    later = time.time() + LOG_KEEP_SECONDS + 60
    assert store.trim_log(now=later) == entries  # all finished and "a week old"
    assert store.changes_since(0) == [] and store.log_floor() == store.log_done()

    reads["all"] = 0
    # `current` is at the floor: nothing to read. `behind` missed d4's entry: it rebuilds.
    write(src / "5.md", "---\nid: d5\n---\nA walrus swam up the river.\n")
    ingestor.run([src], progress=False)
    store.refresh(max_age=0)
    assert [h.chunk_id for h in current.search("walrus", 5)] == ["d5#0"]
    assert reads["all"] == 0
    assert [h.chunk_id for h in behind.search("zebra", 5)] == ["d4#0"]
    assert reads["all"] == store.count()


def test_the_store_knows_whether_any_article_is_undated(ingestor, src):
    ingestor.run([src], progress=False)
    assert not ingestor.store.has_undated()  # asked once, then remembered until a write
    write(src / "9.md", "---\nid: d9\n---\nNo date on this one.\n")
    ingestor.run([src], progress=False)
    assert ingestor.store.has_undated()
