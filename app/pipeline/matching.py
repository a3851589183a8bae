"""Keyword matching: which of a key's keywords the texts of a post or an image show.

Case-insensitive substring matching, as the product documents it. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence


def match_keywords(keywords: Sequence[str], *texts: str) -> list[str]:
    """Return the keywords that occur, case-insensitively, as substrings of any text."""
    return matches_in(keywords, tuple(text.casefold() for text in texts))


def matches_in(keywords: Sequence[str], folded: Sequence[str]) -> list[str]:
    """Return the keywords found in any of the case-folded texts.

    Each text on its own: a keyword never matches across the end of one text and the start of
    the next (the post's text and the image's), which neither shows.
    """
    return [w for w in keywords if any(w.casefold() in text for text in folded)]
