"""The real OCR engine on real images: exact text lines and exact addresses."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import struct
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from app.ocr.addresses import extract_addresses
from app.ocr.engine import EngineConfig, OcrEngine, bf16_native
from app.ocr.images import BadDimensionsError, ImageError, ImageLimits, decode_image
from app.ocr.pool import OcrPool, OcrPoolError
from tests.conftest import DATA

# The real OCR engine: seconds per test (`make check` leaves these out).
pytestmark = pytest.mark.ocr

NETWORK = {"evm": "evm", "sol": "solana"}
LIMITS = ImageLimits(max_pixels=40_000_000)


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine(EngineConfig())


@pytest.fixture(scope="module")
def engines(engine: OcrEngine) -> dict[str, OcrEngine]:
    """The default engine (OpenVINO), OpenVINO forced to f32, and the ONNX Runtime fallback."""
    return {
        "default": engine,
        "openvino-f32": OcrEngine(EngineConfig(precision="f32")),
        "onnxruntime": OcrEngine(EngineConfig(runtime="onnxruntime")),
    }


def test_the_default_runs_on_openvino_at_the_precision_the_cpu_computes_best(
    engines: dict[str, OcrEngine],
) -> None:
    expected = "bf16" if bf16_native() else "f32"
    assert engines["default"].description == f"openvino {expected}, 1 thread(s)"
    assert engines["openvino-f32"].description == "openvino f32, 1 thread(s)"
    assert engines["onnxruntime"].description == "onnxruntime f32, 1 thread(s)"


@pytest.mark.parametrize("runtime", ["default", "openvino-f32", "onnxruntime"])
@pytest.mark.parametrize(
    "name", ["s00_promo.jpg", "s02_sol.png", "s10_sol.jpg", "s19_tweet.png", "s30_promo.png"]
)
def test_lines_and_addresses_are_exact(
    engines: dict[str, OcrEngine], manifest: dict[str, Any], name: str, runtime: str
) -> None:
    truth = manifest[name]
    output = engines[runtime].recognize(decode_image((DATA / name).read_bytes(), LIMITS))
    assert [text for text, _ in output.lines] == truth["lines"]
    assert all(0.5 <= score <= 1 for _, score in output.lines)
    found = [(ca.network, ca.address) for ca in extract_addresses(output.text)]
    assert found == [(NETWORK[a["kind"]], a["value"]) for a in truth["addresses"]]
    assert output.elapsed_ms > 0


@pytest.fixture
async def pool() -> AsyncIterator[OcrPool]:
    ocr_pool = OcrPool(EngineConfig(), processes=1, limits=LIMITS)
    await ocr_pool.start()
    yield ocr_pool
    ocr_pool.close()


def _hold_until_killed(started: str) -> None:
    """In the OCR process: say the job started, then hold it until the test kills us."""
    Path(started).touch()
    time.sleep(300)


async def test_pool_reports_bad_images_and_survives_a_killed_worker(
    pool: OcrPool, tmp_path: Path
) -> None:
    with pytest.raises(ImageError):
        await pool.ocr(b"<html>not an image</html>")

    # Kill the OCR process for real while it holds a job; the pool must replace it. Why a job
    # that says it started and then holds: a sleep before the kill raced a ~128 ms read.
    executor: Any = pool._executor
    pid = next(iter(executor._processes))
    started = tmp_path / "started"
    pending = asyncio.ensure_future(pool._run(_hold_until_killed, str(started)))
    while not started.exists():
        await asyncio.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(OcrPoolError):
        await pending

    output = await pool.ocr((DATA / "s30_promo.png").read_bytes())
    assert output.lines[0][0] == "$PEPE presale live"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _one_by_39_million_png() -> bytes:
    """A 1 x 39,000,000 black-and-white PNG: ~76 KB on the wire, 39 MP once decoded."""
    height = 39_000_000
    header = struct.pack(">IIBBBBB", 1, height, 1, 0, 0, 0, 0)  # 1 bit grey
    compressor = zlib.compressobj(9)
    rows = b"\x00\x80" * 1_000_000  # filter byte + one white pixel, a million rows at a time
    body = b"".join(compressor.compress(rows) for _ in range(height // 1_000_000))
    body += compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("size", [(2001, 10), (4000, 30), (10, 2001), (1, 1), (3, 700)])
def test_thin_strips_are_read_not_crashed_on(engine: OcrEngine, size: tuple[int, int]) -> None:
    # RapidOCR raised ResizeImgError on these (a side rounded to 0 px); they are padded now.
    output = engine.read(_png(Image.new("RGB", size, "white")), LIMITS)
    assert output.lines == []


def test_a_text_strip_keeps_its_text_when_padded(engine: OcrEngine) -> None:
    strip = Image.new("RGB", (2400, 40), "white")
    ImageDraw.Draw(strip).text(
        (10, 12), "CA 0x979097B35B88A0c32751f9732d5d37c609B3f1Ad", fill="black"
    )
    assert engine.read(_png(strip), LIMITS).lines  # some text found, no exception


def test_an_absurdly_long_image_is_refused_from_its_header(engine: OcrEngine) -> None:
    data = _one_by_39_million_png()
    assert len(data) < 200_000
    with pytest.raises(BadDimensionsError, match="1x39000000: a side is over the 16,384"):
        engine.read(data, LIMITS)


modes = st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16", "F", "CMYK"])
formats = st.sampled_from(["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "ICO"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 2500) | st.sampled_from([1, 2, 7, 4000]),
    height=st.integers(1, 2500) | st.sampled_from([1, 2, 7, 4000]),
    mode=modes,
    fmt=formats,
    ink=st.booleans(),
)
def test_any_image_is_read_or_refused_with_its_kind(
    engine: OcrEngine, width: int, height: int, mode: str, fmt: str, ink: bool
) -> None:
    image = Image.new("RGB", (width, height), "white")
    if ink:
        ImageDraw.Draw(image).text((2, 2), "gm 0xdead", fill="black")
    try:
        image = image.convert(mode)
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        return  # Pillow cannot write this mode in this format: nothing to read
    try:
        output = engine.read(buffer.getvalue(), LIMITS)
    except ImageError as exc:
        assert exc.kind in {"not_an_image", "corrupt_image", "unreadable", "bad_dimensions"}
        return
    assert all(isinstance(text, str) and 0 <= score <= 1 for text, score in output.lines)
