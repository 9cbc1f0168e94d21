"""Question answering over news articles, with every claim cited to its passage.

from rag import Engine
answer = Engine.from_settings().ask("Who is the spokesman for the Kremlin?")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Answer", "Citation", "Engine", "Settings"]

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.engine import Answer, Engine
    from rag.grounding import Citation


def __getattr__(name: str):
    # Imported lazily so `rag --help` and `rag status` stay quick.
    if name in ("Answer", "Engine"):
        from rag import engine

        return getattr(engine, name)
    if name == "Citation":
        from rag.grounding import Citation

        return Citation
    if name == "Settings":
        from rag.config import Settings

        return Settings
    raise AttributeError(name)
