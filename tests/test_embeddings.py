"""The bundled embedding model, run for real."""

import numpy as np

from rag.config import Settings
from rag.embeddings import LOCAL_DIM, embedding_id, make_embedding


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
