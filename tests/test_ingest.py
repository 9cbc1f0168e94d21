"""Ingestion against the real Chroma store and the real embedding model."""

import json
import shutil
from collections import Counter

import pytest

from rag.embeddings import LOCAL_DIM, LOCAL_MODEL_NAME
from rag.ingest import Ingestor, under_failed
from rag.store import open_store
from tests.conftest import CORPUS, write

pytestmark = pytest.mark.e2e  # the real embedding model (and store) throughout


@pytest.fixture
def ingestor(settings, embed):
    store = open_store(settings, LOCAL_MODEL_NAME, LOCAL_DIM)
    return Ingestor(settings, store, embed)


@pytest.fixture
def embed_calls(monkeypatch, embed):
    """Records the size of every batch the real model embeds for the store (the planted-text
    detector's own sentence embeddings are not chunks)."""
    from rag.embeddings import OnnxMiniLMEmbedding

    calls = []
    original = OnnxMiniLMEmbedding.embed

    def spy(self, texts):
        if self is embed:
            calls.append(len(texts))
        return original(self, texts)

    monkeypatch.setattr(OnnxMiniLMEmbedding, "embed", spy)
    return calls


def _chunk_ids(store):
    return [cid for cid, _, _ in store.all_chunks()]


def test_bundled_corpus_chunks_carry_spans_and_metadata(ingestor):
    from rag.articles import read_sources
    from rag.clean import clean_text

    report = ingestor.run([CORPUS], progress=False)
    assert report.ok
    assert report.articles.added == 2 and report.chunks.added == ingestor.store.count() > 4
    texts: dict[str, list] = {}
    for cid, text, meta in ingestor.store.all_chunks():
        node = json.loads(meta["_node_content"])
        start, end = node["start_char_idx"], node["end_char_idx"]
        assert end - start == len(text)
        assert cid == f"{meta['doc_id']}#{meta['chunk_index']}"
        assert meta["title"] and meta["n_chunks"] >= 1
        texts.setdefault(meta["doc_id"], []).append((meta["chunk_index"], start, text))
    cleaned = {a.id: clean_text(a.text) for a in read_sources([CORPUS], 10**7)}
    assert set(texts) == set(cleaned)
    for doc_id, chunks in texts.items():
        chunks.sort()
        assert [c[0] for c in chunks] == list(range(len(chunks)))
        starts = [c[1] for c in chunks]
        assert starts == sorted(set(starts))
        # Chunks overlap and tile the article: each one is the cleaned article at its span,
        # and together they rebuild it, with only the line breaks they were cut at between.
        article = cleaned[doc_id]
        assert "Leave a Reply" not in article
        for _, s, t in chunks:
            assert article[s : s + len(t)] == t
        covered = [False] * len(article)
        for _, s, t in chunks:
            covered[s : s + len(t)] = [True] * len(t)
        assert all(c or article[i].isspace() for i, c in enumerate(covered))
        assert ingestor.store.article_text(doc_id) == article


def test_reingest_unchanged_does_no_embedding_work(ingestor, embed_calls):
    first = ingestor.run([CORPUS], progress=False)
    assert embed_calls and first.articles.added == 2
    embed_calls.clear()
    ids_before = sorted(_chunk_ids(ingestor.store))
    again = ingestor.run([CORPUS], progress=False)
    assert embed_calls == []
    assert (again.articles.added, again.articles.updated, again.articles.unchanged) == (0, 0, 2)
    assert again.chunks.unchanged == first.chunks.added
    assert sorted(_chunk_ids(ingestor.store)) == ids_before


def test_changed_article_replaces_its_chunks(tmp_path, ingestor, embed_calls):
    src = tmp_path / "src"
    shutil.copytree(CORPUS, src)
    ingestor.run([src], progress=False)
    f = src / "000_f5788c6caecc39ad.md"
    short = f.read_text().split("\n\n")[0] + "\n\nThe Kremlin later said the board met in Oslo.\n"
    f.write_text(short)
    embed_calls.clear()
    report = ingestor.run([src], progress=False)
    assert (report.articles.updated, report.articles.unchanged) == (1, 1)
    assert sum(embed_calls) == report.chunks.updated
    chunks = [(m["doc_id"], t) for _, t, m in ingestor.store.all_chunks()]
    mine = [t for d, t in chunks if d == "000_f5788c6caecc39ad"]
    assert len(mine) == report.chunks.updated
    assert any("Oslo" in t for t in mine)
    assert not any("geopolitical rivalry" in t for t in mine)


def test_prune_removes_articles_gone_from_the_source(tmp_path, ingestor):
    src = tmp_path / "src"
    shutil.copytree(CORPUS, src)
    ingestor.run([src], progress=False)
    (src / "003_ed5bf04dcd149c8e.md").unlink()
    kept = ingestor.run([src], progress=False)
    assert kept.articles.removed == 0 and len(ingestor.store.indexed()) == 2
    pruned = ingestor.run([src], prune=True, progress=False)
    assert pruned.articles.removed == 1 and pruned.chunks.removed > 0
    assert set(ingestor.store.indexed()) == {"000_f5788c6caecc39ad"}
    assert {m["doc_id"] for _, _, m in ingestor.store.all_chunks()} == {"000_f5788c6caecc39ad"}


def test_prune_spares_articles_whose_file_failed_to_read(tmp_path, ingestor):
    src = tmp_path / "src"
    shutil.copytree(CORPUS, src)
    ingestor.run([src], progress=False)
    (src / "003_ed5bf04dcd149c8e.md").write_bytes(b"\xff\xfe broken \x00")
    report = ingestor.run([src], prune=True, progress=False)
    assert report.articles.removed == 0 and len(report.errors) == 1
    assert len(ingestor.store.indexed()) == 2


def test_bad_inputs_beside_good_ones(tmp_path, ingestor):
    write(
        tmp_path / "good.md", "---\ntitle: Harbour reopens\n---\nThe harbour reopened on Friday.\n"
    )
    write(tmp_path / "empty.txt", "")
    write(tmp_path / "bin.txt", b"\x00\x01\x02")
    write(tmp_path / "bad.jsonl", '{"id": "j1", "text": "A line about trains."}\n{oops\n')
    report = ingestor.run([tmp_path], progress=False)
    assert not report.ok and len(report.errors) == 3
    # A file's id is its path below the folder named, with that folder's name in front.
    assert set(ingestor.store.indexed()) == {f"{tmp_path.name}/good", "j1"}


def test_duplicate_ids_are_reported(tmp_path, ingestor):
    write(tmp_path / "a.jsonl", '{"id": "x", "text": "One."}\n{"id": "x", "text": "Two."}\n')
    report = ingestor.run([tmp_path], progress=False)
    assert report.articles.added == 1
    assert "duplicate" in report.errors[0].reason


def test_half_written_article_is_completed_without_duplicates(tmp_path, ingestor, embed):
    """A crash after an article's body chunks but before its marker: the next run repairs it."""
    from rag.articles import read_sources
    from rag.clean import clean_text
    from rag.ingest import _Pending, chunk_nodes

    (art,) = [a for a in read_sources([CORPUS / "003_ed5bf04dcd149c8e.md"], 10**7)]
    text = clean_text(art.text)
    art.text = text
    p = _Pending(art, art.fingerprint(), ingestor.chunker.split(text), False)
    nodes = [n for n in chunk_nodes(p) if n.metadata["chunk_index"] != 0]
    ingestor.store.upsert(
        ids=[n.node_id for n in nodes],
        embeddings=embed.get_text_embedding_batch([n.text for n in nodes]),
        documents=[n.text for n in nodes],
        metadatas=[{"doc_id": art.id, "chunk_index": n.metadata["chunk_index"]} for n in nodes],
    )
    assert art.id not in ingestor.store.indexed()  # no marker: not counted as indexed
    report = ingestor.run([CORPUS], progress=False)
    assert report.articles.added == 2
    ids = _chunk_ids(ingestor.store)
    assert len(ids) == len(set(ids)) == report.chunks.added
    per_doc = Counter(m["doc_id"] for _, _, m in ingestor.store.all_chunks())
    assert all(per_doc[d] == ia.n_chunks for d, ia in ingestor.store.indexed().items())


def test_prune_with_a_missing_path_removes_nothing(tmp_path, ingestor):
    ingestor.run([CORPUS], progress=False)
    report = ingestor.run([tmp_path / "typo"], prune=True, progress=False)
    assert report.articles.removed == 0 and len(ingestor.store.indexed()) == 2
    assert "prune skipped" in report.warnings[0]


def test_prune_removes_chunks_a_crashed_run_left(tmp_path, ingestor, embed):
    src = tmp_path / "src"
    shutil.copytree(CORPUS, src)
    ingestor.run([src], progress=False)
    # Body chunks of an article whose run died before its marker was written:
    ingestor.store.upsert(
        ids=["ghost#1", "ghost#2"],
        embeddings=embed.get_text_embedding_batch(["a", "b"]),
        documents=["a", "b"],
        metadatas=[{"doc_id": "ghost", "chunk_index": i} for i in (1, 2)],
    )
    report = ingestor.run([src], prune=True, progress=False)
    assert report.articles.removed == 0  # it never was a complete article
    assert "ghost" not in {m["doc_id"] for _, _, m in ingestor.store.all_chunks()}


def test_keyword_index_follows_an_update_that_keeps_the_chunk_count(tmp_path, ingestor):
    from rag.keyword import KeywordIndex

    f = write(tmp_path / "s" / "a.md", "The mayor opened the bridge.\n")
    ingestor.run([f.parent], progress=False)
    kw = KeywordIndex(ingestor.store, tmp_path / "kw")
    assert kw.search("mayor", 5)
    f.write_text("The zebra opened the bridge.\n")  # same second, same chunk count
    ingestor.run([f.parent], progress=False)
    assert kw.search("zebra", 5) and not kw.search("mayor", 5)


def test_unreadable_jsonl_in_a_folder_is_reported_not_fatal(tmp_path, ingestor):
    write(tmp_path / "in" / "ok.md", "A fine article about ferries.\n")
    (tmp_path / "in" / "broken.jsonl").symlink_to(tmp_path / "missing.jsonl")
    report = ingestor.run([tmp_path / "in"], progress=False)
    assert report.articles.added == 1 and "cannot read" in report.errors[0].reason


def test_an_id_taken_by_another_file_is_a_reported_collision(tmp_path, settings, embed):
    """cnn/a.md then bbc/a.md with the same front-matter id: the second is reported with both
    places, and the stored article is kept; a moved file (old place gone) takes over."""
    store = open_store(settings, LOCAL_MODEL_NAME, LOCAL_DIM)
    ing = Ingestor(settings, store, embed)
    body = "---\nid: story-1\ntitle: {t}\n---\n\n{t} opened a new ferry line to the islands.\n"
    cnn = write(tmp_path / "cnn" / "a.md", body.format(t="Harbour board"))
    bbc = write(tmp_path / "bbc" / "a.md", body.format(t="River council"))
    assert ing.run([cnn.parent], progress=False).articles.added == 1
    second = ing.run([bbc.parent], progress=False)
    assert second.articles.updated == 0 and len(second.errors) == 1
    reason = second.errors[0].reason
    assert "duplicate article id 'story-1'" in reason and str(cnn.resolve()) in reason
    assert second.errors[0].path == str(bbc.resolve())
    assert "Harbour board" in store.article_text("story-1")
    cnn.unlink()  # the first file is gone: the second is a move, not a collision
    moved = ing.run([bbc.parent], progress=False)
    assert moved.ok and moved.articles.updated == 1
    assert "River council" in store.article_text("story-1")


def test_prune_keeps_what_lies_under_a_folder_that_failed_to_read():
    failed = {"/data/news/cnn"}
    assert under_failed("/data/news/cnn/2024-01-01.md", failed)
    assert under_failed("/data/news/cnn", failed)
    assert not under_failed("/data/news/cnn-archive/a.md", failed)  # a sibling, not inside
    assert not under_failed("/data/news/bbc/a.md", failed)
