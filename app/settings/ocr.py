"""How images are read: OCR processes and runtime, the cache, near-duplicates, pixel bounds."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field

from app.settings.base import SettingsBase

# Why 40 MP: a 10 MB PNG can decode to gigabytes (decompression bombs); real post images are
# far below this (a 4K screenshot is 8.3 MP).
MAX_IMAGE_PIXELS_DEFAULT = 40_000_000
# Why 16384: the largest side WebP allows and most image hosts keep; a scrolled phone
# screenshot (1179 x 15000) still fits.
MAX_IMAGE_SIDE_DEFAULT = 16384


class OcrSettings(SettingsBase):
    """The OCR processes, what they may decode, and what is not read twice."""

    # Why one process per core, each with every core's threads (OpenVINO): measured on 2 cores,
    # two processes of two threads read 8.8 images/s against 9.1 for two of one thread, while an
    # image that finds the worker idle takes 142 ms instead of 229 (docs/benchmarks.md).
    ocr_processes: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description=(
            "OCR worker processes (default: one per core); each OpenVINO process peaks at ~0.6 GB."
        ),
    )
    ocr_threads: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Inference threads per OCR process. Unset: every core with OpenVINO (it shares "
            "cores between processes well: an image alone gets them all), 1 with ONNX Runtime "
            "(which slows down when processes share cores)."
        ),
    )
    ocr_engine: Literal["openvino", "onnxruntime"] = Field(
        default="openvino",
        description=(
            "The runtime the OCR models run on: `openvino` (faster on x86 CPUs, bf16 where the "
            "CPU has it) or `onnxruntime` (the fallback)."
        ),
    )
    ocr_precision: Literal["auto", "bf16", "f32"] = Field(
        default="auto",
        description=(
            "OpenVINO's inference precision: `auto` is bf16 where the CPU computes it natively "
            "(AVX512_BF16 or AMX), else f32. The one in use is logged and on `/status/`."
        ),
    )
    # Why 32: twice the images one post may have, so a post whose images all sit on a slow host
    # holds at most half the slots; the rest keep reading other posts' images.
    ocr_concurrency: int = Field(
        default=32,
        ge=1,
        description=(
            "Images in flight per worker (downloading or waiting for OCR); twice the images one "
            "post may have, so one post never holds them all."
        ),
    )
    ocr_http_queue: int = Field(
        default=8,
        ge=1,
        description=(
            "`POST /ocr` requests waiting for an OCR process per worker; past it `/ocr` answers "
            "503 with `retry_after`."
        ),
    )
    ocr_http_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description=(
            "Share of OCR turns `POST /ocr` gets while pipeline images also wait (either gets all "
            "when the other is idle)."
        ),
    )
    ocr_det_max_side: int = Field(
        default=960, ge=320, description="Detector input: the longest side is scaled down to this."
    )
    qr_codes: bool = Field(
        default=True,
        description=(
            "Decode QR codes in every image: their addresses join `buy_ca`, their text is "
            "matched against keywords, and they are listed in `qr` (docs/records.md)."
        ),
    )
    ocr_cache_entries: int = Field(
        default=4096,
        ge=0,
        description=(
            "Recent OCR outputs kept, by image URL and by image bytes (SHA-256); 0 disables."
        ),
    )
    near_duplicates: bool = Field(
        default=True,
        description=(
            "Reuse the OCR output of an image already read for a re-encoded or resized copy of "
            "it (same picture, other bytes); checks and measurements in docs/ocr.md."
        ),
    )
    near_duplicate_entries: int = Field(
        default=1024,
        ge=0,
        description=(
            "Images remembered for the near-duplicate check (~26 KB each: a hash, grey and "
            "colour thumbnails, the reading's boxes), within the OCR cache's time window; 0 "
            "disables."
        ),
    )
    ocr_cache_ttl_s: float = Field(
        default=3600.0,
        ge=0,
        description=(
            "Seconds within which a repeated image (same URL, or same bytes under another URL) is "
            "not OCR'd again."
        ),
    )
    max_image_pixels: int = Field(
        default=MAX_IMAGE_PIXELS_DEFAULT,
        ge=1,
        description="Largest image in pixels, checked from the header before decoding.",
    )
    max_image_side: int = Field(
        default=MAX_IMAGE_SIDE_DEFAULT,
        ge=1,
        description=(
            "Longest side of an image in pixels, checked from the header before decoding "
            "(`bad_dimensions` past it)."
        ),
    )
