"""Chunks of an entity's builder text, within the embedding model's input limit.

The *what* of each entity's text is SQL (``migration.<entity>_embedding_text`` in
``target/500_phase5_ai.sql``), so the enqueue triggers and the phase 5 transform hash the same
text. Here only the *how long*: the seed plan's recommendation (512 tokens, ~20% overlap; at
~4 characters a token, 2,000 characters with 400 of overlap) keeps every chunk far inside
Titan v2's 8,192 tokens / 50,000 characters, and lets a long message match on any part.
"""

from __future__ import annotations

import hashlib

#: Characters per chunk (~512 tokens) and overlap between neighbours (~20%).
CHUNK_CHARS = 2_000
OVERLAP_CHARS = 400


def chunks(text: str | None, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> list[str]:
    """Split ``text`` into chunks of at most ``size`` characters overlapping by ``overlap``.

    A chunk ends at the last whitespace of its window when there is one, so words are not cut.
    Empty or missing text has no chunks (the row gets no vector).
    """
    if overlap >= size:
        raise ValueError("overlap must be smaller than the chunk size")
    text = (text or "").strip()
    if not text:
        return []
    found: list[str] = []
    start = 0
    while True:
        end = min(start + size, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + overlap + 1, end)
            end = cut if cut > start else end
        found.append(text[start:end].strip())
        if end >= len(text):
            return found
        start = max(end - overlap, start + 1)


def content_hash(text: str | None) -> str:
    """md5 of the builder text, as the SQL computes it (``md5(coalesce(text, ''))``)."""
    return hashlib.md5((text or "").encode("utf-8"), usedforsecurity=False).hexdigest()
