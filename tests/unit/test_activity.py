"""The dashboard's memory: last results with thumbnails, per-key deliveries, the history."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.activity import (
    RECENT_RESULTS,
    THUMBNAIL_MAX_BYTES,
    Activity,
    History,
    image_type,
    percentiles,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100


def test_the_last_results_are_kept_newest_first_with_their_keywords() -> None:
    activity = Activity()
    for i in range(RECENT_RESULTS + 5):
        activity.result(f"e{i}", f"x:{i}", f"https://img.example/{i}.png", "t", [], PNG)
    activity.matched("e24", ["pepe"])
    activity.matched("e24", ["doge", "pepe"])
    activity.matched("e0", ["gone"])  # no longer listed: nothing to annotate
    shown = activity.recent_results()
    assert len(shown) == RECENT_RESULTS
    assert [r["post"] for r in shown[:2]] == ["x:24", "x:23"] and shown[-1]["post"] == "x:5"
    assert shown[0]["keywords"] == ["doge", "pepe"]


def test_a_thumbnail_is_kept_only_for_a_small_image_of_a_known_type() -> None:
    activity = Activity()
    activity.result("a", "x:1", "https://i.example/a.png", "", [], PNG)
    activity.result("b", "x:2", "https://i.example/b.svg", "", [], b"<svg onload=alert(1)>")
    activity.result(
        "c", "x:3", "https://i.example/c.png", "", [], PNG + b"\0" * THUMBNAIL_MAX_BYTES
    )
    activity.result("d", "x:4", "https://i.example/a.png", "", [], None)  # the URL was cached
    by_post = {r["post"]: r["thumbnail"] for r in activity.recent_results()}
    assert by_post["x:2"] is None and by_post["x:3"] is None
    assert by_post["x:1"] and by_post["x:4"]  # the cached one shows the bytes read before
    result_id = int(by_post["x:1"].rsplit("/", 1)[1])
    assert activity.thumbnail(result_id) == (PNG, "image/png")
    assert activity.thumbnail(999) is None


def test_urls_are_shown_redacted() -> None:
    activity = Activity()
    activity.result("a", "x:1", "https://u:secret@i.example/a.png?sig=abc", "", [], None)
    assert "secret" not in str(activity.recent_results()) and "abc" not in str(
        activity.recent_results()
    )


def test_image_types_by_their_magic_bytes() -> None:
    assert image_type(PNG) == "image/png"
    assert image_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert image_type(b"GIF89a...") == "image/gif"
    assert image_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert image_type(b"<html>") is None


def test_history_points_are_rates_since_the_previous_one_from_the_start() -> None:
    history = History(started_at=100.0)
    first = history.point(105.0, {"posts": 50}, [100.0, 300.0], {"posts": 3})
    assert first["rates"] == {"posts": 10.0}  # what happened before the first sample counts
    assert first["lag"] == {"posts": 3} and first["ocr_ms"]["p50"] == 200.0
    second = history.point(110.0, {"posts": 60}, [], {})
    assert second["rates"] == {"posts": 2.0} and second["ocr_ms"] == {"p50": None, "p95": None}


@given(st.lists(st.floats(min_value=0, max_value=1e6), max_size=50))
def test_percentiles_of_any_samples(samples: list[float]) -> None:
    shown = percentiles(samples)
    if samples:
        assert shown["p50"] is not None and shown["p95"] is not None
        assert min(samples) - 0.1 <= shown["p50"] <= shown["p95"] <= max(samples) + 0.1
    else:
        assert shown == {"p50": None, "p95": None}
