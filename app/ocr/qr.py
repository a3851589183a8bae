"""QR codes in an image: decode them (zxing-cpp), say what each holds, pull out addresses.

Promo images often carry a QR code with a wallet or contract address, a payment URI
(``ethereum:0x...@1?value=...``, ``solana:...``, ``tron:...``) or a link. Decoding runs in the
OCR process, on the image already decoded for OCR (never on the event loop); a code that
cannot be read (damaged, partial) yields nothing, never an error.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.ocr.addresses import extract_addresses
from models.events import BuyCa, QrCode

# Why a bound: a QR code holds at most ~7 kB (numeric); a longer text is not one we show.
MAX_QR_TEXT = 8192
# Why a bound: an image can be a grid of a hundred codes; more than this are not even kept
# (app/ocr/reading.py shows fewer, and says so).
MAX_QR_DECODED = 64
# Payment URIs: EIP-681 (ethereum:[pay-]ADDRESS[@chain][/fn][?...]), Solana Pay, TRON.
_PAYMENT = re.compile(r"^(ethereum|solana|tron|bsc|polygon|base):(?:pay-)?([^@/?#\s]+)", re.I)
_LINK = re.compile(r"^(https?|tg)://", re.I)


def decode_qr(rgb: NDArray[np.uint8]) -> list[str]:
    """Return the text of every QR code found in an RGB image (none for damaged ones)."""
    import zxingcpp  # imported in the OCR processes only

    try:
        # Why RGB as given: zxing-cpp takes it for BGR, which only swaps the weights of two
        # channels in its luminance; a QR code is dark on light either way.
        found: Any = zxingcpp.read_barcodes(
            rgb,
            formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
            try_rotate=True,
            try_downscale=True,
        )
    except Exception:  # zxing-cpp on an odd image: no code, not a failed image
        return []
    texts: list[str] = []
    for code in found:
        text = str(code.text)[:MAX_QR_TEXT]
        if text and code.valid and text not in texts:
            texts.append(text)
            if len(texts) == MAX_QR_DECODED:
                break
    return texts


def describe(text: str) -> QrCode:
    """Return a decoded text with its kind: address, uri (payment), link or text."""
    stripped = text.strip()
    if _PAYMENT.match(stripped):
        return QrCode(text=text, kind="uri")
    if _LINK.match(stripped):
        return QrCode(text=text, kind="link")
    found = extract_addresses(stripped)
    if len(found) == 1 and found[0].address == stripped:
        return QrCode(text=text, kind="address")
    return QrCode(text=text, kind="text")


def described(texts: list[str]) -> list[QrCode] | None:
    """Return each decoded text with its kind, or None when the image had no QR code."""
    return [describe(text) for text in texts] or None


def qr_addresses(texts: list[str]) -> list[BuyCa]:
    """Return the addresses in decoded QR texts (a payment URI's target first), de-duplicated."""
    found: list[BuyCa] = []
    for text in texts:
        payment = _PAYMENT.match(text.strip())
        # Why the target alone first: "0x…@1?value=1e18" must not read as a longer token.
        candidates = [payment.group(2)] if payment else []
        for part in (*candidates, text):
            for address in extract_addresses(part):
                held = next(
                    (i for i, f in enumerate(found) if f.identity == address.identity), None
                )
                if held is None:
                    found.append(address)
                elif found[held].chain is None and address.chain is not None:
                    # The whole URI names the chain ("ethereum:0x…@8453"); the target alone not.
                    found[held] = address
    return found


def merged(first: list[BuyCa], then: list[BuyCa]) -> list[BuyCa]:
    """Return ``first`` followed by the addresses of ``then`` it does not already hold."""
    held = {address.identity for address in first}
    return [*first, *(address for address in then if address.identity not in held)]
