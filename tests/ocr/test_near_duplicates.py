"""Near-duplicates through the real OCR processes: a copy is answered, another address is read."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from app.metrics import metrics
from app.ocr.runtime import OcrRuntime
from app.settings import Settings
from tests.conftest import DATA
from tests.support import REPO
from tests.variants import jpeg, random_address, resized, with_address


async def _runtime(**overrides: object) -> OcrRuntime:
    runtime = OcrRuntime(Settings(ocr_processes=1, **overrides))  # type: ignore[arg-type]
    await runtime.start()
    return runtime


@pytest.fixture(scope="module")
async def runtime() -> AsyncIterator[OcrRuntime]:
    started = await _runtime()
    yield started
    await started.stop()


def _similar_hits() -> float:
    value = metrics.registry.get_sample_value("ocrstream_ocr_cache_hits_total", {"by": "similar"})
    return value or 0.0


async def test_a_copy_is_answered_from_the_original_and_another_address_is_read(
    runtime: OcrRuntime,
) -> None:
    with Image.open(DATA / "s19_tweet.png") as image:
        template = image.convert("RGB")
    first = with_address(template, random_address(1), 0.03)
    output, cached = await runtime.ocr_image(first)
    assert not cached and random_address(1) in output.text.replace(" ", "").lower()
    assert output.min_line_px > 0

    hits = _similar_hits()
    with Image.open(io.BytesIO(first)) as stamped:
        for copy in (jpeg(stamped, 80), resized(stamped, 0.75)):
            again, cached = await runtime.ocr_image(copy)
            assert cached and again.lines == output.lines
    assert _similar_hits() == hits + 2

    # The same template printing another address: near in hash, but read, not reused.
    second, cached = await runtime.ocr_image(with_address(template, random_address(2), 0.03))
    assert not cached and random_address(2) in second.text.replace(" ", "").lower()
    assert _similar_hits() == hits + 2


async def test_small_print_in_a_large_image_is_never_taken_from_a_lookalike(
    runtime: OcrRuntime,
) -> None:
    # A 1280 px wide picture with its address in 8 px letters: in the 384 px thumbnail the
    # two addresses look alike (their blocks differ by 4.1 grey levels, copies by up to 5.5),
    # so only the size of the smallest line refuses the reuse.
    with Image.open(REPO / "bench" / "images" / "s27_tweet.jpg") as image:
        large = image.convert("RGB")
    first, cached = await runtime.ocr_image(with_address(large, random_address(5), 0.012))
    assert not cached
    second, cached = await runtime.ocr_image(with_address(large, random_address(6), 0.012))
    assert not cached


async def test_turned_off_a_copy_is_read_again() -> None:
    off = await _runtime(near_duplicates=False)
    try:
        with Image.open(DATA / "s10_sol.jpg") as image:
            await off.ocr_image(jpeg(image, 95))
            _, cached = await off.ocr_image(jpeg(image, 80))
        assert not cached and off.similar is None
    finally:
        await off.stop()
