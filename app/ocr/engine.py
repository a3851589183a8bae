"""The OCR engine: RapidOCR 3.x on OpenVINO (or ONNX Runtime), as measured best in docs/ocr.md."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from app.ocr.images import ImageLimits, UnreadableImageError, decode_image
from app.ocr.qr import decode_qr

Runtime = Literal["openvino", "onnxruntime"]
# A text line's box: its four corners (x, y), clockwise from the top left.
Box = tuple[tuple[float, float], ...]
Precision = Literal["auto", "bf16", "f32"]


@dataclass(frozen=True)
class EngineConfig:
    """How the engine is built; picklable so worker processes can build their own."""

    det_max_side: int = 960
    threads: int = 1
    runtime: Runtime = "openvino"
    # "auto": bf16 where the CPU computes it natively (AVX512_BF16 or AMX), else f32.
    precision: Precision = "auto"
    # Decode QR codes in each image too (app/ocr/qr.py).
    qr: bool = True


@dataclass(frozen=True)
class OcrOutput:
    """Recognised lines with their confidence, and the time the OCR itself took."""

    lines: list[tuple[str, float]] = field(default_factory=list)
    elapsed_ms: float = 0.0
    # The texts of the QR codes in the image, and the time decoding them took.
    qr: list[str] = field(default_factory=list)
    qr_ms: float = 0.0
    # The height of the smallest text box found, in the image's pixels (0: no text). The
    # near-duplicate check uses it to tell whether a thumbnail still shows that text's detail.
    min_line_px: float = 0.0
    # Where each line was read: its box's four corners in the image's pixels, line by line.
    # A copy of the picture is verified by reading each line again at its box (reread).
    boxes: list[Box] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Return the lines joined by newlines, as the product's API does."""
        return "\n".join(text for text, _ in self.lines)


class OcrEngine:
    """RapidOCR with PP-OCRv6 small models bundled in the wheel (nothing downloaded)."""

    def __init__(self, config: EngineConfig) -> None:
        from rapidocr import RapidOCR  # heavy import: only in processes that OCR

        # Why each parameter (see docs/ocr.md): the angle classifier garbles long address
        # lines; a 960 px detector side keeps every address at lower cost; batching recognition
        # crops pads to the widest and is slower on CPU.
        params: dict[str, Any] = {
            "Global.use_cls": False,
            "Global.log_level": "error",
            "Det.limit_type": "max",
            "Det.limit_side_len": config.det_max_side,
            "Rec.rec_batch_num": 1,
        }
        if config.runtime == "openvino":
            params.update(openvino_params(config.threads))
        else:
            params.update(
                {
                    "EngineConfig.onnxruntime.intra_op_num_threads": config.threads,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                    # Measured: the memory arena cuts detection time by ~20%.
                    "EngineConfig.onnxruntime.enable_cpu_mem_arena": True,
                }
            )
        self._ocr: Any = RapidOCR(params=params)
        self.precision = "f32"
        if config.runtime == "openvino":
            self.precision = _compile_openvino(self._ocr, config)
            _pad_recognition_width(self._ocr)
        self.description = f"{config.runtime} {self.precision}, {config.threads} thread(s)"
        self._qr = config.qr

    def read(self, data: bytes, limits: ImageLimits) -> OcrOutput:
        """Decode untrusted image bytes and return their text lines.

        Raises ImageError (a subclass saying which) for bytes that are not a readable image,
        and UnreadableImageError for any failure of the engine on a decoded one.
        """
        return self.read_rgb(decode_image(data, limits))

    def read_rgb(self, rgb: NDArray[np.uint8]) -> OcrOutput:
        """Return the text lines and QR codes of a decoded image.

        Raises UnreadableImageError for any failure of the engine on it.
        """
        try:
            output = self.recognize(rgb)
        except Exception as exc:
            # Why every exception: the engine's failures on odd inputs (its ResizeImgError on
            # thin strips, numpy errors) are properties of one image, never of the stream.
            raise UnreadableImageError(
                f"the OCR engine failed on this {rgb.shape[1]}x{rgb.shape[0]} image: "
                f"{type(exc).__name__}: {exc}"[:500]
            ) from None
        if not self._qr:
            return output
        started = time.perf_counter()
        codes = decode_qr(rgb)
        qr_ms = round((time.perf_counter() - started) * 1000, 2)
        return replace(output, qr=codes, qr_ms=qr_ms)

    def recognize(self, rgb: NDArray[np.uint8]) -> OcrOutput:
        """Return the text lines found in an RGB image."""
        started = time.perf_counter()
        result: Any = self._ocr(rgb)
        elapsed_ms = (time.perf_counter() - started) * 1000
        found = zip(result.txts or (), result.scores or (), _boxes(result.boxes), strict=False)
        read = [(str(t), round(float(s), 4), box) for t, s, box in found if t]
        return OcrOutput(
            lines=[(text, score) for text, score, _ in read],
            elapsed_ms=round(elapsed_ms, 1),
            min_line_px=smallest_box_height(result.boxes),
            boxes=[box for _, _, box in read],
        )

    def reread(self, rgb: NDArray[np.uint8], lines: list[str], boxes: list[Box]) -> bool:
        """Tell whether each line reads exactly as given at its box in ``rgb`` (recogniser only).

        Why: a picture that looks like one read before may differ in one line (another address
        in the same template); reading every line again at its place, on this image's own
        pixels, costs a fraction of a full read and accepts only what this image shows.
        """
        from rapidocr.utils.process_img import get_rotate_crop_image

        if len(lines) != len(boxes):
            return False
        if not lines:
            return True
        try:
            crops = [get_rotate_crop_image(rgb, np.asarray(box, dtype=np.float32)) for box in boxes]
            again = self._ocr.recognize_txt(crops)
        except Exception:
            return False  # a box that no longer fits the image: not a copy to trust
        return [str(text) for text in again.txts or ()] == lines


def _boxes(boxes: Any) -> list[Box]:
    """Return the detector's boxes as plain corner tuples (none when it found nothing)."""
    if boxes is None:
        return []
    corners = np.asarray(boxes, dtype=np.float32).reshape(-1, 4, 2)
    return [tuple((round(float(x), 1), round(float(y), 1)) for x, y in box) for box in corners]


def smallest_box_height(boxes: Any) -> float:
    """Return the height of the smallest of the detector's four-corner boxes (0 for none)."""
    if boxes is None or len(boxes) == 0:
        return 0.0
    corners = np.asarray(boxes, dtype=np.float32).reshape(-1, 4, 2)
    # A box's height: the shorter of its left and right edges (a tilted line's box is skewed).
    left = np.linalg.norm(corners[:, 3] - corners[:, 0], axis=1)
    right = np.linalg.norm(corners[:, 2] - corners[:, 1], axis=1)
    return round(float(np.minimum(left, right).min()), 1)


def openvino_params(threads: int) -> dict[str, Any]:
    """Return rapidocr's settings for running both models on OpenVINO, from the wheel's files."""
    import rapidocr
    from rapidocr import EngineType

    models = Path(rapidocr.__file__).parent / "models"
    return {
        "Det.engine_type": EngineType.OPENVINO,
        "Rec.engine_type": EngineType.OPENVINO,
        # Why the paths: without them rapidocr downloads its OpenVINO models at run time.
        "Det.model_path": str(models / "PP-OCRv6_det_small.onnx"),
        "Rec.model_path": str(models / "PP-OCRv6_rec_small.onnx"),
        **{f"EngineConfig.openvino.{k}": v for k, v in openvino_cpu_properties(threads).items()},
    }


def openvino_cpu_properties(threads: int) -> dict[str, Any]:
    """Return the CPU properties each OCR process compiles its models with (rapidocr's names).

    Why pinning off: OpenVINO pins every process's inference threads to the same cores by
    default, so two OCR processes read no faster than one. One stream and the latency hint:
    each process reads one image at a time; parallelism comes from the processes.
    """
    return {
        "inference_num_threads": threads,
        "enable_cpu_pinning": False,
        "num_streams": 1,
        "performance_hint": "LATENCY",
    }


def bf16_native() -> bool:
    """Tell whether this CPU computes bf16 natively (OpenVINO says BF16 in its capabilities)."""
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _compile_openvino(ocr: Any, config: EngineConfig) -> str:
    """Compile rapidocr's two OpenVINO models at the chosen precision; return the one in use.

    Why recompile: rapidocr 3.10 (pinned) compiles its models with a fixed set of CPU
    properties that has no precision hint, so OpenVINO chooses one silently. We compile its
    models again with ours, naming the precision, and hand rapidocr the infer requests.
    """
    import openvino

    precision = config.precision
    if precision == "auto":
        precision = "bf16" if bf16_native() else "f32"
    core = openvino.Core()
    properties = {
        "INFERENCE_NUM_THREADS": config.threads,
        "ENABLE_CPU_PINNING": False,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": precision,
    }
    used = set()
    for stage in (ocr._load_det_model(), ocr._load_rec_model()):
        session = stage.session
        if not hasattr(session, "model") or not hasattr(session, "session"):
            raise RuntimeError("rapidocr's OpenVINO session changed; re-check app/ocr/engine.py")
        compiled = core.compile_model(session.model, "CPU", properties)
        session.session = compiled.create_infer_request()
        used.add(str(compiled.get_property("INFERENCE_PRECISION_HINT")))
    # OpenVINO names them "<Type: 'bfloat16'>" / "<Type: 'float32'>".
    return "bf16" if any("bfloat16" in u for u in used) else "f32"


# Why 64: OpenVINO prepares each new input shape the first time it sees it (a first image of a
# new size read 1.2-1.6x slower). Recognition inputs are 48 px high and as wide as the line;
# rounding the width up to a multiple of 64 (padding as rapidocr itself pads a batch) leaves
# few shapes to prepare: the cold pass over bench/images went from 253 to 218 ms per image.
REC_WIDTH_STEP = 64


def _pad_recognition_width(ocr: Any) -> None:
    """Make rapidocr's recognizer pad each line's width up to a multiple of REC_WIDTH_STEP."""
    import cv2

    recognizer = ocr._load_rec_model()
    channels, height, _ = recognizer.rec_image_shape

    def resize_norm_img(img: NDArray[np.uint8], max_wh_ratio: float) -> NDArray[np.float32]:
        # rapidocr 3.10's own steps, with the width rounded up (see REC_WIDTH_STEP).
        width = -(-int(height * max_wh_ratio) // REC_WIDTH_STEP) * REC_WIDTH_STEP
        line_h, line_w = img.shape[:2]
        resized_w = min(width, math.ceil(height * line_w / float(line_h)))
        resized = cv2.resize(img, (resized_w, height)).astype("float32")
        normalized = (resized.transpose((2, 0, 1)) / 255 - 0.5) / 0.5
        padded = np.zeros((channels, height, width), dtype=np.float32)
        padded[:, :, :resized_w] = normalized
        return padded

    recognizer.resize_norm_img = resize_norm_img
