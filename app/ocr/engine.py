"""The OCR engine: RapidOCR 3.x on ONNX Runtime with the configuration that won our benchmark."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.ocr.images import ImageLimits, UnreadableImageError, decode_image


@dataclass(frozen=True)
class EngineConfig:
    """How the engine is built; picklable so worker processes can build their own."""

    det_max_side: int = 960
    threads: int = 1


@dataclass(frozen=True)
class OcrOutput:
    """Recognised lines with their confidence, and the time the OCR itself took."""

    lines: list[tuple[str, float]] = field(default_factory=list)
    elapsed_ms: float = 0.0

    @property
    def text(self) -> str:
        """Return the lines joined by newlines, as the product's API does."""
        return "\n".join(text for text, _ in self.lines)


class OcrEngine:
    """RapidOCR with PP-OCRv6 small models bundled in the wheel (nothing downloaded)."""

    def __init__(self, config: EngineConfig) -> None:
        from rapidocr import RapidOCR  # heavy import: only in processes that OCR

        # Why each parameter (see docs/benchmarks.md): the angle classifier garbles long
        # address lines; a 960 px detector side keeps every address at lower cost; batching
        # recognition crops pads to the widest and is slower on CPU.
        self._ocr = RapidOCR(
            params={
                "Global.use_cls": False,
                "Global.log_level": "error",
                "Det.limit_type": "max",
                "Det.limit_side_len": config.det_max_side,
                "Rec.rec_batch_num": 1,
                "EngineConfig.onnxruntime.intra_op_num_threads": config.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                # Measured: the memory arena cuts detection time by ~20% (bench/ocr_bench.py).
                "EngineConfig.onnxruntime.enable_cpu_mem_arena": True,
            }
        )

    def read(self, data: bytes, limits: ImageLimits) -> OcrOutput:
        """Decode untrusted image bytes and return their text lines.

        Raises ImageError (a subclass saying which) for bytes that are not a readable image,
        and UnreadableImageError for any failure of the engine on a decoded one.
        """
        rgb = decode_image(data, limits)
        try:
            return self.recognize(rgb)
        except Exception as exc:
            # Why every exception: the engine's failures on odd inputs (its ResizeImgError on
            # thin strips, numpy errors) are properties of one image, never of the stream.
            raise UnreadableImageError(
                f"the OCR engine failed on this {rgb.shape[1]}x{rgb.shape[0]} image: "
                f"{type(exc).__name__}: {exc}"[:500]
            ) from None

    def recognize(self, rgb: NDArray[np.uint8]) -> OcrOutput:
        """Return the text lines found in an RGB image."""
        started = time.perf_counter()
        result: Any = self._ocr(rgb)
        elapsed_ms = (time.perf_counter() - started) * 1000
        texts = result.txts or ()
        scores = result.scores or ()
        lines = [(str(t), round(float(s), 4)) for t, s in zip(texts, scores, strict=False) if t]
        return OcrOutput(lines=lines, elapsed_ms=round(elapsed_ms, 1))
