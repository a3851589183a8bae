"""The real OCR engine on real images: exact text lines and exact addresses."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.addresses import extract_addresses
from app.ocr.engine import EngineConfig, OcrEngine
from app.ocr.images import ImageError, decode_image
from app.ocr.pool import OcrPool, OcrPoolError
from tests.conftest import DATA

NETWORK = {"evm": "evm", "sol": "solana"}
MAX_PIXELS = 40_000_000


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine(EngineConfig())


@pytest.mark.parametrize(
    "name", ["s00_promo.jpg", "s02_sol.png", "s10_sol.jpg", "s19_tweet.png", "s30_promo.png"]
)
def test_lines_and_addresses_are_exact(
    engine: OcrEngine, manifest: dict[str, Any], name: str
) -> None:
    truth = manifest[name]
    output = engine.recognize(decode_image((DATA / name).read_bytes(), MAX_PIXELS))
    assert [text for text, _ in output.lines] == truth["lines"]
    assert all(0.5 <= score <= 1 for _, score in output.lines)
    found = [(ca.network, ca.address) for ca in extract_addresses(output.text)]
    assert found == [(NETWORK[a["kind"]], a["value"]) for a in truth["addresses"]]
    assert output.elapsed_ms > 0


@pytest.fixture
async def pool() -> AsyncIterator[OcrPool]:
    ocr_pool = OcrPool(EngineConfig(), processes=1, max_pixels=MAX_PIXELS)
    await ocr_pool.start()
    yield ocr_pool
    ocr_pool.close()


async def test_pool_reports_bad_images_and_survives_a_killed_worker(pool: OcrPool) -> None:
    with pytest.raises(ImageError):
        await pool.ocr(b"<html>not an image</html>")

    # Kill the OCR process for real while it works; the pool must replace it.
    executor: Any = pool._executor
    pid = next(iter(executor._processes))
    pending = asyncio.ensure_future(pool.ocr((DATA / "s19_tweet.png").read_bytes()))
    await asyncio.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(OcrPoolError):
        await pending

    output = await pool.ocr((DATA / "s30_promo.png").read_bytes())
    assert output.lines[0][0] == "$PEPE presale live"
