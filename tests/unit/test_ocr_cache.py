"""The OCR cache: bounded, time-windowed, and joining concurrent identical work."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.ocr.cache import OcrCache, content_key, url_key
from app.ocr.engine import OcrOutput


def _output(text: str) -> OcrOutput:
    return OcrOutput(lines=[(text, 0.9)], elapsed_ms=1.0)


def test_least_recently_used_entries_go_first() -> None:
    cache = OcrCache(max_entries=2, ttl_s=60)
    cache.put("a", _output("a"))
    cache.put("b", _output("b"))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", _output("c"))
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None
    assert len(cache) == 2


def test_entries_expire_after_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = OcrCache(max_entries=10, ttl_s=5)
    cache.put("a", _output("a"))
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 6)
    assert cache.get("a") is None


async def test_concurrent_requests_share_one_computation() -> None:
    cache = OcrCache(max_entries=10, ttl_s=60)
    calls = 0

    async def compute() -> OcrOutput:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return _output("x")

    results = await asyncio.gather(*(cache.get_or_compute("k", compute) for _ in range(5)))
    assert calls == 1
    assert [cached for _, cached in results].count(False) == 1
    assert (cache.hits, cache.misses) == (4, 1)


async def test_failures_are_shared_but_not_cached() -> None:
    cache = OcrCache(max_entries=10, ttl_s=60)

    async def fail() -> OcrOutput:
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    outcomes = await asyncio.gather(
        cache.get_or_compute("k", fail), cache.get_or_compute("k", fail), return_exceptions=True
    )
    assert all(isinstance(o, ValueError) for o in outcomes)
    assert cache.get("k") is None


def test_keys_separate_urls_from_bytes() -> None:
    assert url_key("https://a/b.png") != content_key(b"https://a/b.png")
    assert content_key(b"same") == content_key(b"same")
