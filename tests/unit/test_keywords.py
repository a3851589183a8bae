"""The product's keyword rules at their edges."""

from __future__ import annotations

import pytest

from app.keys.keywords import (
    MAX_KEYWORD_CHARS,
    MAX_KEYWORDS_PER_KEY,
    KeywordError,
    merge_keywords,
    normalize_keywords,
    remove_keywords,
)
from app.pipeline.matching import match_keywords


def test_keywords_are_trimmed_lowercased_and_deduplicated_in_order() -> None:
    assert normalize_keywords([" PEPE ", "Doge", "pepe", "DOGE  "]) == ["pepe", "doge"]


def test_blank_keyword_is_refused() -> None:
    with pytest.raises(KeywordError, match="empty"):
        normalize_keywords(["ok", "   "])


def test_keyword_length_limit_is_inclusive() -> None:
    assert normalize_keywords(["a" * MAX_KEYWORD_CHARS]) == ["a" * MAX_KEYWORD_CHARS]
    with pytest.raises(KeywordError, match="longer than 100"):
        normalize_keywords(["a" * (MAX_KEYWORD_CHARS + 1)])


def test_a_key_holds_at_most_100_keywords() -> None:
    hundred = [f"w{i}" for i in range(MAX_KEYWORDS_PER_KEY)]
    assert len(merge_keywords([], hundred)) == MAX_KEYWORDS_PER_KEY
    # Duplicates do not count against the cap.
    assert len(merge_keywords(hundred, ["W0", "w1 "])) == MAX_KEYWORDS_PER_KEY
    with pytest.raises(KeywordError, match="at most 100"):
        merge_keywords(hundred, ["one-more"])


def test_remove_normalises_what_it_removes() -> None:
    assert remove_keywords(["pepe", "doge", "wif"], [" DOGE", "absent"]) == ["pepe", "wif"]


def test_match_is_a_case_insensitive_substring_over_all_texts() -> None:
    keywords = ["pepe", "raydium", "sol"]
    assert match_keywords(keywords, "Buy $PEPE now") == ["pepe"]
    assert match_keywords(keywords, "nothing here", "Trade on Raydium now") == ["raydium"]
    # Substring, as documented: "sol" matches inside "Solana".
    assert match_keywords(keywords, "live on Solana") == ["sol"]
    assert match_keywords(keywords, "") == []
