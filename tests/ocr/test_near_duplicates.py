"""Near-duplicates through the real OCR processes: a copy is answered, another address is read."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from app.metrics import metrics
from app.ocr.engine import EngineConfig, OcrEngine
from app.ocr.images import ImageLimits
from app.ocr.reading import reading_of
from app.ocr.runtime import OcrRuntime
from app.settings import Settings
from harness.variants import (
    TEMPLATES,
    Attack,
    attack_address,
    attack_fonts,
    attacks,
    jpeg,
    png,
    promo,
    random_address,
    resized,
    with_address,
)
from harness.workers import REPO
from tests.conftest import DATA

# The real OCR engine: seconds per test (`make check` leaves these out).
pytestmark = pytest.mark.ocr


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


@pytest.fixture(scope="module")
def own_reading() -> Any:
    """Read an image on its own (no index): what a victim's image itself shows."""
    engine = OcrEngine(EngineConfig(threads=1))
    limits = ImageLimits(max_pixels=50_000_000)
    return lambda data: reading_of(engine.read(data, limits)).buy_ca


def _one_per_kind_and_template() -> list[Attack]:
    """Every kind of attack on every template, in the first font (all fonts: the bench)."""
    seen: set[tuple[str, str]] = set()
    chosen = []
    for attack in attacks():
        template, kind = attack.label.split("/", 1)[0], attack.label.split(": ", 1)[1]
        if (template, kind) not in seen:
            seen.add((template, kind))
            chosen.append(attack)
    return chosen


@pytest.mark.parametrize("attack", _one_per_kind_and_template(), ids=lambda a: a.label)
async def test_an_attackers_lookalike_never_gives_a_victim_an_address_its_image_lacks(
    runtime: OcrRuntime, own_reading: Any, attack: Attack
) -> None:
    # The attacker's image first: read, and remembered by the near-duplicate index.
    await runtime.ocr_image(attack.attacker)
    for how, victim in attack.victims:
        output, _ = await runtime.ocr_image(victim)
        given = reading_of(output).buy_ca
        assert given == own_reading(victim), f"{how}: given {given}"


async def test_an_ocr_caller_never_seeds_what_the_pipeline_reuses(
    runtime: OcrRuntime, own_reading: Any
) -> None:
    # A template and addresses of their own: no other test of the module read these.
    template, font = TEMPLATES[0], attack_fonts()[-1]
    attacker = png(promo(template, font, attack_address("solana", 901), faint=True))
    victim = png(promo(template, font, attack_address("solana", 902), faint=True))
    hits = _similar_hits()
    await runtime.ocr_image(attacker, caller="attackerkey1")  # POST /ocr
    output, cached = await runtime.ocr_image(victim)  # the pipeline: its own cache and index
    assert not cached and _similar_hits() == hits
    assert reading_of(output).buy_ca == own_reading(victim)
    # And the other way round: the victim's image, read by the pipeline, is no answer to /ocr.
    again, cached = await runtime.ocr_image(victim, caller="attackerkey1")
    assert not cached and again.lines == output.lines
