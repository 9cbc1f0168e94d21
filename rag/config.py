"""Every setting in one typed place.

Values come from, highest priority first: keyword arguments, `RAG_*` environment variables,
the TOML file named by `RAG_CONFIG_FILE` (else `./rag.toml` when present), then the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Backend = Literal["local", "openai", "openai-compatible"]

# Chunks retrieved per question: the one range, for RAG_TOP_K and for every caller's top-k.
TOP_K_MIN, TOP_K_MAX = 1, 100
TopK = Annotated[int, Field(ge=TOP_K_MIN, le=TOP_K_MAX)]
_TOP_K = TypeAdapter(TopK)


def check_top_k(value: object) -> int:
    """A top-k asked for by a caller (`--top-k`, `Engine.ask(top_k=...)`, the UI's slider),
    checked against the range RAG_TOP_K has; "8" and 8.0 are 8. Raises InvalidInput."""
    from rag.errors import InvalidInput

    try:
        if isinstance(value, bool):
            raise ValueError("a truth value is not a count")
        return _TOP_K.validate_python(value.strip() if isinstance(value, str) else value)
    except (ValidationError, ValueError):
        raise InvalidInput(
            f"top-k must be a whole number from {TOP_K_MIN} to {TOP_K_MAX} (the passages "
            f"retrieved per question); got {str(value)[:40]!r}"
        ) from None


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "newsrag"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def llm_threads(requested: int) -> int:
    """0 means automatic: half the cores this process may use, at least one. llama.cpp's
    threads spin while they wait for each other; once they outnumber the free cores (a second
    process, say an ingestion beside a server, is enough) one step waits for a descheduled
    thread and a 1 s answer takes a minute. Half the cores leaves room for the other process."""
    return requested or max(1, usable_cores() // 2)


def _config_file() -> Path | None:
    named = os.environ.get("RAG_CONFIG_FILE")
    if named:
        return Path(named)
    local = Path("rag.toml")
    return local if local.is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", validate_default=True)

    # Where the store, keyword index and state live. Several stores can live side by side.
    data_dir: Path = Field(default_factory=default_data_dir)

    # Embeddings
    embed_backend: Backend = "local"
    embed_model: str = Field(
        default="",
        description="Model name for openai/openai-compatible embeddings "
        "(default text-embedding-3-small); ignored by the local backend.",
    )
    embed_base_url: str | None = None
    embed_api_key: str | None = None
    embed_batch_size: int = Field(default=8, ge=1, le=2048)
    embed_threads: int = Field(
        default=0, ge=0, description="onnxruntime threads; 0 = all cores (they yield, not spin)"
    )

    # Vector store
    chroma_mode: Literal["persistent", "http"] = "persistent"
    chroma_host: str = "127.0.0.1"
    chroma_port: int = 8000
    chroma_ssl: bool = False
    chroma_headers: dict[str, str] = Field(default_factory=dict)
    collection_prefix: str = "news"

    # Ingestion
    chunk_size: int = Field(default=192, ge=32, le=2048, description="tokens per chunk")
    chunk_overlap: int = Field(default=32, ge=0, description="tokens shared by neighbours")
    max_article_mb: float = Field(default=5.0, gt=0, description="larger articles are refused")

    # Web sources (feeds and pages given to `rag ingest URL`)
    web_timeout: float = Field(default=20.0, gt=0, description="seconds per HTTP request")
    web_max_page_mb: float = Field(default=5.0, gt=0, description="larger responses are refused")
    web_host_delay: float = Field(
        default=1.0, ge=0, description="seconds between two requests to the same host"
    )
    web_max_redirects: int = Field(default=5, ge=0, le=20)
    web_user_agent: str = "newsrag/0.1 (+https://github.com/newsrag; question answering over news)"
    web_respect_robots: bool = True
    web_allow_private: bool = Field(
        default=False,
        description="let public feeds and pages link or redirect to local/private addresses",
    )
    watch_nice: int = Field(
        default=10, ge=0, le=19, description="`rag watch` runs at this lower CPU priority"
    )

    # Language model
    llm_backend: Backend = "local"
    llm_model: str = Field(
        default="",
        description="model name for openai (default gpt-4o-mini) or an openai-compatible server",
    )
    llm_model_path: Path | None = Field(
        default=None, description="a GGUF file for the local backend (default: bundled SmolLM2)"
    )
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = Field(
        default=60.0, gt=0, description="overall seconds per model call, retries included"
    )
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_temperature: float = Field(default=0.0, ge=0, le=2)
    llm_max_tokens: int = Field(default=96, ge=8, le=4096)
    llm_context_window: int = Field(default=2048, ge=512)
    llm_threads: int = Field(
        default=0, ge=0, description="llama.cpp threads; 0 = half the cores (see llm_threads())"
    )
    seed: int = 0

    # Retrieval and answering
    top_k: TopK = Field(default=6, description="chunks retrieved per question")
    rrf_k: int = Field(default=60, ge=1, description="reciprocal rank fusion constant")
    context_sentences: int = Field(default=5, ge=1, le=40)
    context_tokens: int = Field(default=360, ge=32, description="token budget of the context")
    min_relevance: float = Field(
        default=0.35, description="below this best-sentence relevance, the answer is a refusal"
    )
    confident_relevance: float = Field(
        default=0.35,
        description="below this, a model answer that no passage supports becomes a refusal "
        "rather than a quote",
    )
    min_support: float = Field(
        default=0.75, ge=0, le=1, description="share of a sentence's words its passage must hold"
    )

    # Eval judge: an OpenAI-compatible model that grades correctness and faithfulness
    judge_base_url: str | None = None
    judge_model: str = ""
    judge_api_key: str | None = None

    # Answer log: every answer kept in <data_dir>/answers.sqlite3 (rag logs, rag feedback)
    log: bool = Field(
        default=True, description="keep every answer in the data dir; false: log nothing"
    )

    # Browser UI
    ui_host: str = "127.0.0.1"
    ui_port: int = 7860
    ui_auth: str | None = Field(default=None, description="user:password to require a login")
    ui_max_upload_mb: float = Field(default=20.0, gt=0)
    ui_concurrency: int = Field(default=2, ge=1, description="questions answered at once")
    ui_queue_size: int = Field(default=32, ge=1, description="questions waiting, at most")

    @field_validator("data_dir", "llm_model_path")
    @classmethod
    def _expand(cls, v: Path | None) -> Path | None:
        return v.expanduser() if v is not None else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            if not path.is_file():
                raise FileNotFoundError(f"RAG_CONFIG_FILE points at {path}, which does not exist")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def keyword_dir(self) -> Path:
        return self.data_dir / "keyword"

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def store_location(self) -> str:
        if self.chroma_mode == "http":
            scheme = "https" if self.chroma_ssl else "http"
            return f"{scheme}://{self.chroma_host}:{self.chroma_port}"
        return str(self.chroma_dir)
