"""What decoding QR codes adds to each image, beside the OCR of the same image.

    .venv/bin/python bench/qr_cost.py [--image-dir bench/images] [--write docs/benchmarks.md]

For each image of the set, in one run: the OCR time (the baseline), the QR decoding time of
the image as it is (no code), and of the image with a code pasted in a corner (an EIP-681
payment URI, as promo images carry). Decoding runs where the pipeline runs it: in the OCR
process, on the image already decoded for OCR, never on the event loop.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import segno
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.ocr.engine import EngineConfig, OcrEngine  # noqa: E402
from app.ocr.images import ImageLimits, decode_image  # noqa: E402
from app.ocr.qr import decode_qr  # noqa: E402
from bench.ocr_bench import image_set_arguments, show  # noqa: E402

PAYMENT = "ethereum:0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D@1?value=1e17"
LIMITS = ImageLimits(max_pixels=40_000_000, max_side=16_384)


def with_code(rgb: np.ndarray) -> np.ndarray:
    """Return the image with a QR code pasted in its bottom-right corner."""
    buffer = io.BytesIO()
    segno.make(PAYMENT, error="m").save(buffer, kind="png", scale=3, border=4)
    code = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    height, width = rgb.shape[:2]
    scale = max(1, -(-code.shape[0] // min(height, width)))  # grow small images to fit
    canvas = np.full((height * scale, width * scale, 3), 255, np.uint8)
    canvas[:height, :width] = rgb
    out = canvas.copy()
    out[-code.shape[0] :, -code.shape[1] :] = code
    return out


def timed_ms(function, *args) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Return (milliseconds, result) of one call."""
    started = time.perf_counter()
    result = function(*args)
    return (time.perf_counter() - started) * 1000, result


def main() -> int:
    """Measure, print the section, and write it when asked."""
    args, paths = image_set_arguments(__doc__)
    engine = OcrEngine(EngineConfig(threads=1, qr=False))
    engine.recognize(decode_image(paths[0].read_bytes(), LIMITS))  # warm
    ocr, plain, coded, found = [], [], [], 0
    for path in paths:
        rgb = decode_image(path.read_bytes(), LIMITS)
        ocr.append(timed_ms(engine.recognize, rgb)[0])
        plain.append(timed_ms(decode_qr, rgb)[0])
        ms, codes = timed_ms(decode_qr, with_code(rgb))
        coded.append(ms)
        found += codes == [PAYMENT]
    median_ocr = statistics.median(ocr)
    rows = [("no code (the image as it is)", plain), ("a payment QR code pasted in", coded)]
    lines = [
        f"Command: `.venv/bin/python bench/qr_cost.py` ({len(paths)} images of "
        f"`{args.image_dir.relative_to(REPO)}`, one OCR thread, 2-core machine). Baseline: the "
        f"OCR of the same images in the same run, median {median_ocr:.0f} ms.",
        "",
        "| image | QR decoding p50 | p95 | max | p50 / OCR p50 |",
        "|---|---|---|---|---|",
    ]
    for label, values in rows:
        cuts = statistics.quantiles(values, n=20)
        lines.append(
            f"| {label} | {statistics.median(values):.1f} ms | {cuts[18]:.1f} ms | "
            f"{max(values):.1f} ms | {statistics.median(values) / median_ocr:.3f}x |"
        )
    lines += ["", f"The pasted code was read in {found} of {len(paths)} images."]
    section = "\n".join(lines) + "\n"
    show(section, args.write, "QR codes: what decoding adds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
