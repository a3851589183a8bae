"""The OCR engine's and the image decoder's configuration, from the OCR settings."""

from __future__ import annotations

import os

from app.ocr.engine import EngineConfig
from app.ocr.images import ImageLimits
from app.settings import OcrSettings


def engine_config(settings: OcrSettings) -> EngineConfig:
    """Return how each OCR process builds its engine."""
    threads = settings.ocr_threads
    if threads is None:
        threads = (os.cpu_count() or 1) if settings.ocr_engine == "openvino" else 1
    return EngineConfig(
        det_max_side=settings.ocr_det_max_side,
        threads=threads,
        runtime=settings.ocr_engine,
        precision=settings.ocr_precision,
        qr=settings.qr_codes,
    )


def image_limits(settings: OcrSettings) -> ImageLimits:
    """Return the bounds an image's header is checked against before decoding."""
    return ImageLimits(max_pixels=settings.max_image_pixels, max_side=settings.max_image_side)
