"""Question answering over news articles, with every claim cited to its passage."""

__version__ = "0.1.0"
