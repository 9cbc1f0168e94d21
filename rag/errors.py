"""One error tree for the whole library. Each error knows the CLI exit status it maps to, so the
CLI has one `except RagError` instead of a chain, and API users can catch `RagError`.

Exit statuses: 0 done, 1 some input failed (reported, the rest went on), 2 bad input or setup,
3 the language model could not be reached.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the library raises on purpose; the message says what to do next."""

    exit_code = 2


class InvalidInput(RagError, ValueError):
    """A malformed question, filter or date."""


class ConfigError(RagError, ValueError):
    """A setting is missing or contradicts another."""


class MissingDependency(RagError, RuntimeError):
    """An optional package a configured backend needs is not installed."""


class StoreUnavailable(RagError, RuntimeError):
    """The Chroma server cannot be reached, or the local store cannot be opened."""


class EmptyStore(RagError, RuntimeError):
    """Nothing is indexed yet."""


class LLMUnavailable(RagError, RuntimeError):
    """The language model could not answer: server down, slow, or refusing the request."""

    exit_code = 3
