"""What an image says, as every caller gives it: text, lines, addresses and QR codes, bounded.

One function for the OCR agent, ``POST /ocr`` and ``ocrstream ocr``, so they never disagree
about an image. Addresses are taken from everything read (the whole text, every QR code's whole
text) before anything is cut; then what can grow with the image is bounded, and the fields cut
are named in ``truncated``. Why bounded: an image can hold a grid of a hundred QR codes or a
wall of small print, and its ``ocr_result`` must still fit one Kafka record. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.ocr.addresses import extract_addresses
from app.ocr.engine import OcrOutput
from app.ocr.qr import describe, merged, qr_addresses
from models.events import BuyCa, OcrResult, QrCode, Ref, TruncatedField

# Why these numbers: a tweet-like image reads as a few hundred characters in 5-20 lines, and a
# promo carries one or two QR codes of an address or a link (under 200 characters). The bounds
# are far above that and keep an ocr_result under ~170 KB however hostile the image (JSON
# escapes a control character in 6 bytes), well inside Kafka's default 1 MB record.
MAX_TEXT_CHARS = 16_384
MAX_LINES = 1_000
MAX_QR_CODES = 16
MAX_QR_TEXT_CHARS = 1_024
MAX_ADDRESSES = 32


@dataclass(frozen=True)
class Reading:
    """What an image says, within the bounds above."""

    text: str
    lines: list[tuple[str, float]]
    buy_ca: list[BuyCa]
    qr: list[QrCode] | None
    # The fields cut to their bound, or None when nothing was.
    truncated: list[TruncatedField] | None

    def result(self, image_url: str, ref: Ref) -> OcrResult:
        """Return the ``ocr_result`` event of an image of a post that reads so."""
        return OcrResult(
            image_url=image_url,
            text=self.text,
            ref=ref,
            buy_ca=self.buy_ca,
            qr=self.qr,
            truncated=self.truncated,
        )


def reading_of(output: OcrOutput) -> Reading:
    """Return what ``output`` says: addresses from all of it, then each field bounded."""
    # Printed addresses first; a QR code's add only those not printed too.
    addresses = merged(extract_addresses(output.text), qr_addresses(output.qr))
    cut: list[TruncatedField] = []
    lines = _bounded_lines(output.lines)
    if lines != output.lines:
        cut.append("text")
    codes = output.qr[:MAX_QR_CODES]
    shown = [text[:MAX_QR_TEXT_CHARS] for text in codes]
    if len(codes) < len(output.qr) or shown != codes:
        cut.append("qr")
    if len(addresses) > MAX_ADDRESSES:
        cut.append("buy_ca")
    return Reading(
        text="\n".join(text for text, _ in lines),
        lines=lines,
        buy_ca=addresses[:MAX_ADDRESSES],
        qr=[_described(full, text) for full, text in zip(codes, shown, strict=True)] or None,
        truncated=cut or None,
    )


def _bounded_lines(lines: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Return the first lines within MAX_LINES and MAX_TEXT_CHARS (whole lines; a first line
    longer than the whole budget is cut)."""
    kept: list[tuple[str, float]] = []
    used = 0
    for text, score in lines[:MAX_LINES]:
        newline = 1 if kept else 0  # the one that joins it to the text before
        if used + newline + len(text) > MAX_TEXT_CHARS:
            if not kept:
                kept.append((text[:MAX_TEXT_CHARS], score))
            break
        kept.append((text, score))
        used += newline + len(text)
    return kept


def _described(full: str, shown: str) -> QrCode:
    """Return a code's text as shown (maybe cut), with the kind its whole text has."""
    code = describe(full)
    return code if shown == full else QrCode(text=shown, kind=code.kind)
