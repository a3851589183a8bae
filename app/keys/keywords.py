"""Keyword rules of the product: normalisation and limits (matching: app/pipeline/matching.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Why these numbers: they are the product's documented limits.
MAX_KEYWORDS_PER_KEY = 100
MAX_KEYWORD_CHARS = 100


class KeywordError(ValueError):
    """A keyword list breaks one of the product's rules."""


def normalize_keyword(word: str) -> str:
    """Return a keyword trimmed and lowercased."""
    return word.strip().lower()


def normalize_keywords(words: Iterable[str]) -> list[str]:
    """Trim, lowercase and de-duplicate keywords, keeping first-seen order; refuse bad ones."""
    seen: dict[str, None] = {}
    for raw in words:
        word = normalize_keyword(raw)
        if not word:
            raise KeywordError("keywords must not be empty or blank")
        if len(word) > MAX_KEYWORD_CHARS:
            raise KeywordError(
                f"keyword longer than {MAX_KEYWORD_CHARS} characters: {word[:40]!r}..."
            )
        seen.setdefault(word, None)
    return list(seen)


def merge_keywords(current: Sequence[str], added: Iterable[str]) -> list[str]:
    """Return ``current`` plus the normalised ``added``; refuse going past the per-key cap."""
    merged = normalize_keywords([*current, *added])
    if len(merged) > MAX_KEYWORDS_PER_KEY:
        raise KeywordError(
            f"a key holds at most {MAX_KEYWORDS_PER_KEY} keywords "
            f"(has {len(current)}, this would make {len(merged)})"
        )
    return merged


def remove_keywords(current: Sequence[str], removed: Iterable[str]) -> list[str]:
    """Return ``current`` without the (normalised) ``removed`` keywords."""
    gone = {normalize_keyword(w) for w in removed}
    return [w for w in current if w not in gone]
