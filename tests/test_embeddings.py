"""The bundled embedding model, run for real."""

import numpy as np
import pytest

from rag.config import Settings
from rag.embeddings import LOCAL_DIM, embedding_id, make_embedding

pytestmark = pytest.mark.e2e  # the real embedding model (and store) throughout


def test_vectors_are_unit_length_and_meaningful(embed):
    texts = [
        "The central bank raised interest rates to fight inflation.",
        "Interest rates were increased by the central bank to curb rising prices.",
        "The striker scored twice in the cup final.",
    ]
    v = np.array(embed.get_text_embedding_batch(texts))
    assert v.shape == (3, LOCAL_DIM)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > 0.7 > v[0] @ v[2] + 0.3


def test_batching_and_sorting_keep_order_and_values(embed):
    texts = [
        "short",
        "a much longer sentence about a court ruling on the new election law " * 3,
        "medium length text about rail strikes",
    ]
    batch = np.array(embed.get_text_embedding_batch(texts))
    singles = np.array([embed.get_query_embedding(t) for t in texts])
    assert np.allclose(batch, singles, atol=1e-4)


def test_long_input_is_truncated_not_rejected(embed):
    v = embed.get_text_embedding("word " * 2000)
    assert len(v) == LOCAL_DIM


def test_factory_defaults_to_local_and_names_collection(tmp_path):
    e = make_embedding(Settings(data_dir=tmp_path))
    assert embedding_id(e) == ("all-MiniLM-L6-v2-int8", LOCAL_DIM)


def test_vector_cache_returns_the_same_vectors_and_stays_bounded(embed, monkeypatch):
    from rag.embeddings import VectorCache

    cache = VectorCache(embed, max_items=3)
    texts = ["alpha harbour", "beta rail strike", "gamma museum"]
    first = cache.get_many(texts)
    assert np.allclose(first, embed.get_text_embedding_batch(texts), atol=1e-5)
    calls = []
    original = type(embed).embed
    monkeypatch.setattr(type(embed), "embed", lambda self, t: calls.append(t) or original(self, t))
    again = cache.get_many(["gamma museum", "alpha harbour", "delta bridge"])
    assert calls == [["delta bridge"]]  # only the new text is embedded
    assert np.allclose(again[0], first[2]) and np.allclose(again[1], first[0])
    assert len(cache._items) == 3 and "beta rail strike" not in cache._items  # LRU eviction
