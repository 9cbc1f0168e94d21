"""Screening at ingestion: which spans of an article are planted text (rag/injection.py).

The detector reads every sentence of an article once, when it is stored, instead of the
retrieved sentences at every question. Its findings travel with each chunk's metadata:

- `planted`: "start-end,start-end" article offsets of the planted spans that overlap the chunk
  (a frame in one chunk taints the claim at the start of the next, so spans are found in the
  whole article, then given to each chunk they touch);
- `planted_title`: the headline addresses an AI, so the article is a planting;
- `screen`: which detector found them. Chunks screened by another version (or none: stores
  written before screening existed) are screened at answer time, as before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag.injection import planted_spans, planted_title

_DETECTOR_FILES = ("injection.py", "injection_model.py", "confusables.py", "text.py")
_DETECTOR_ASSETS = ("assets/injection_detector.npz",)


@lru_cache(maxsize=1)
def version() -> str:
    """A digest of the detector's code and weights: flags stored by another detector are
    not trusted (a newer one may catch what the older missed)."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _DETECTOR_FILES + _DETECTOR_ASSETS:
        path = here / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Screening:
    spans: tuple[tuple[int, int], ...]
    title_planted: bool

    def chunk_fields(self, start: int, end: int) -> dict[str, str | bool]:
        """What one chunk, [start, end) of the article, stores of this screening."""
        inside = [(a, b) for a, b in self.spans if a < end and start < b]
        return {
            "planted": ",".join(f"{a}-{b}" for a, b in inside),
            "planted_title": self.title_planted,
            "screen": version(),
        }


def screen_article(text: str, title: str) -> Screening:
    """Every sentence of the article through the patterns and the learned detector."""
    return Screening(tuple(planted_spans(text)), planted_title(title) if title else False)


def stored_spans(meta: dict) -> list[tuple[int, int]] | None:
    """The planted spans a chunk was stored with, or None when it was not screened by this
    detector (then the caller screens it now)."""
    if meta.get("screen") != version():
        return None
    raw = str(meta.get("planted") or "")
    out = []
    for part in raw.split(","):
        a, sep, b = part.partition("-")
        if sep and a.isdigit() and b.isdigit():
            out.append((int(a), int(b)))
    return out


def stored_title_flag(meta: dict) -> bool | None:
    """The headline's flag as stored, or None when not screened by this detector."""
    if meta.get("screen") != version():
        return None
    return bool(meta.get("planted_title"))
