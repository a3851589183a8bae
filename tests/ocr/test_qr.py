"""QR codes in images, generated here: what is read, what it holds, and what it costs nothing."""

from __future__ import annotations

import io

import numpy as np
import pytest
import segno
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from app.ocr.engine import EngineConfig, OcrEngine
from app.ocr.images import ImageLimits
from app.ocr.qr import decode_qr, describe, merged, qr_addresses
from models.events import BuyCa

# The real OCR engine: seconds per test (`make check` leaves these out).
pytestmark = pytest.mark.ocr

EVM = "0x979097B35B88A0c32751f9732d5d37c609B3f1Ad"
SOL = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
LIMITS = ImageLimits(max_pixels=40_000_000, max_side=16_384)
EVM_CA = BuyCa(network="evm", address=EVM)


def _qr(text: str, scale: int = 4) -> Image.Image:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=scale, border=4)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _rgb(image: Image.Image) -> NDArray[np.uint8]:
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_plain_code_is_read() -> None:
    assert decode_qr(_rgb(_qr(EVM))) == [EVM]


def test_a_rotated_code_is_read() -> None:
    rotated = _qr(f"solana:{SOL}").rotate(23, expand=True, fillcolor="white")
    assert decode_qr(_rgb(rotated)) == [f"solana:{SOL}"]


def test_a_small_code_inside_a_large_meme_is_read() -> None:
    meme = Image.new("RGB", (1600, 1200), (250, 220, 80))
    draw = ImageDraw.Draw(meme)
    for y in range(40, 1100, 60):
        draw.text((40, y), "WAGMI presale live, scan to buy " * 3, fill=(20, 20, 20))
    meme.paste(_qr(EVM, scale=3), (1350, 950))
    assert decode_qr(_rgb(meme)) == [EVM]


def test_two_codes_in_one_image_are_both_read() -> None:
    canvas = Image.new("RGB", (700, 320), "white")
    canvas.paste(_qr(EVM), (10, 10))
    canvas.paste(_qr("https://t.me/somegroup"), (380, 10))
    assert sorted(decode_qr(_rgb(canvas))) == sorted([EVM, "https://t.me/somegroup"])


def test_a_damaged_code_yields_nothing_and_no_error() -> None:
    code = _qr(EVM)
    ImageDraw.Draw(code).rectangle((0, 0, code.width // 2, code.height // 2), fill="white")
    assert decode_qr(_rgb(code)) == []
    assert decode_qr(np.zeros((1, 1, 3), dtype=np.uint8)) == []


def test_a_code_of_5_kb_is_read_whole() -> None:
    digits = "".join(str(i % 10) for i in range(5000))  # numeric: 5 kB fits one code
    assert decode_qr(_rgb(_qr(digits, scale=2))) == [digits]


@pytest.mark.parametrize(
    ("text", "kind", "addresses"),
    [
        (EVM, "address", [EVM_CA]),
        # A payment URI's chain id names the chain (EIP-681): 1 Ethereum, 56 BNB Smart Chain.
        (f"ethereum:{EVM}@1?value=1e18", "uri", [EVM_CA.model_copy(update={"chain": "ethereum"})]),
        (f"ethereum:pay-{EVM}@56/transfer?address={EVM}", "uri",
         [EVM_CA.model_copy(update={"chain": "bsc"})]),
        (f"solana:{SOL}?amount=1&label=x", "uri", [BuyCa(network="solana", address=SOL)]),
        ("https://t.me/pepegroup", "link", []),
        (f"https://dexscreener.com/ethereum/{EVM}", "link",
         [EVM_CA.model_copy(update={"chain": "ethereum"})]),
        ("gm frens", "text", []),
    ],
)  # fmt: skip
def test_what_a_code_holds(text: str, kind: str, addresses: list[BuyCa]) -> None:
    assert describe(text).kind == kind
    assert qr_addresses([text]) == addresses


def test_an_address_printed_and_in_a_code_is_listed_once_printed_first() -> None:
    printed = [BuyCa(network="solana", address=SOL), BuyCa(network="evm", address=EVM)]
    assert merged(printed, [BuyCa(network="evm", address=EVM)]) == printed


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine(EngineConfig(threads=1))


def test_the_engine_reads_text_and_code_of_one_image(engine: OcrEngine) -> None:
    canvas = Image.new("RGB", (760, 300), "white")
    ImageDraw.Draw(canvas).text((20, 40), "SCAN TO BUY", fill="black", font_size=40)
    canvas.paste(_qr(f"ethereum:{EVM}@1"), (440, 10))
    output = engine.read(_png(canvas), LIMITS)
    assert output.qr == [f"ethereum:{EVM}@1"] and output.qr_ms > 0
    assert "SCAN TO BUY" in output.text.upper()
    without = OcrEngine(EngineConfig(threads=1, qr=False)).read(_png(canvas), LIMITS)
    assert without.qr == [] and without.qr_ms == 0
