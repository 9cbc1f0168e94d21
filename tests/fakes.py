"""A scripted LLM for unit tests of the logic around the model (allowed by the standards)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from pydantic import PrivateAttr


class FakeLLM(CustomLLM):
    """Replies with `reply(messages)`; records every call."""

    _reply: Callable[[Sequence[ChatMessage]], str] = PrivateAttr()
    _calls: list = PrivateAttr(default_factory=list)

    def __init__(self, reply: Callable[[Sequence[ChatMessage]], str] | str, **kw: Any) -> None:
        super().__init__(**kw)
        self._reply = reply if callable(reply) else (lambda _m: reply)

    @property
    def calls(self) -> list[Sequence[ChatMessage]]:
        return self._calls

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, model_name="fake")

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kw: Any) -> ChatResponse:
        self._calls.append(messages)
        text = self._reply(messages)
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kw: Any):
        self._calls.append(messages)
        text = self._reply(messages)

        def gen():
            acc = ""
            for word in text.split(" "):
                delta = (" " if acc else "") + word
                acc += delta
                yield ChatResponse(
                    message=ChatMessage(role=MessageRole.ASSISTANT, content=acc), delta=delta
                )

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kw: Any) -> CompletionResponse:
        return CompletionResponse(text=self._reply([ChatMessage(content=prompt)]))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kw: Any):
        raise NotImplementedError


def is_condense(messages: Sequence[ChatMessage]) -> bool:
    return "standalone question" in (messages[0].content or "")
