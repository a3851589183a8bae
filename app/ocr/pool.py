"""A pool of OCR processes, so CPU-bound recognition never runs on the event loop."""

from __future__ import annotations

import asyncio
import ctypes
import io
import logging
import multiprocessing
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TypeVar

from PIL import Image, ImageDraw, ImageFont

from app.ocr.engine import EngineConfig, OcrEngine, OcrOutput
from app.ocr.images import ImageLimits, decode_image
from app.ocr.similar import Fingerprint, fingerprint, hash_candidates, lines_agree
from models.events import ErrorKind

log = logging.getLogger(__name__)

R = TypeVar("R")

# One engine per worker process, built by the pool initializer.
_engine: OcrEngine | None = None
_limits = ImageLimits(max_pixels=0)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the worker that started it dies (even by kill -9)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _init_worker(config: EngineConfig, limits: ImageLimits) -> None:
    global _engine, _limits
    # Why: without it, each kill -9 of a worker left its OCR process (~300 MB) running.
    _die_with_parent()
    # Why: Ctrl-C reaches every process of the terminal's group; the worker stops the pool
    # itself, and an interrupted OCR process printed a KeyboardInterrupt traceback each time.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _engine = OcrEngine(config)
    _limits = limits


def _ocr_bytes(data: bytes) -> OcrOutput:
    """Decode and OCR in the worker process (decoding untrusted bytes stays out of the loop)."""
    assert _engine is not None, "worker process not initialised"
    return _engine.read(data, _limits)


@dataclass(frozen=True)
class Reading:
    """What an OCR process made of an image: its output, or the near-duplicates to check first."""

    fingerprint: Fingerprint
    # None when the image's hash is near some known ones (``candidates``): the caller checks
    # them and, if none is the same picture, asks again with no known hashes.
    output: OcrOutput | None
    candidates: list[int]


def _read_unless_known(data: bytes, known: bytes) -> Reading:
    """Decode, fingerprint and (unless the hash is near one of ``known``) OCR, in one pass."""
    assert _engine is not None, "worker process not initialised"
    rgb = decode_image(data, _limits)
    print_ = fingerprint(rgb)
    candidates = hash_candidates(print_.dhash, known)
    if candidates:
        return Reading(print_, None, candidates)
    return Reading(print_, _engine.read_rgb(rgb), [])


def _verify_or_read(
    data: bytes, copy_of: OcrOutput, size: tuple[int, int], which: list[int]
) -> OcrOutput | None:
    """Read the lines ``which`` of ``copy_of`` again at their boxes in this image; None when
    each reads the same (the reading stands for this image too), else its own full reading."""
    assert _engine is not None, "worker process not initialised"
    rgb = decode_image(data, _limits)
    if lines_agree(_engine, rgb, copy_of, size, which):
        return None
    return _engine.read_rgb(rgb)


# Why these: a post's image is most often landscape, square or portrait; each becomes its own
# detector input shape, and lines of several lengths give the recognizer several widths.
# OpenVINO prepares each new shape the first time it meets it, so the first images are not slow.
_WARM_SIZES = ((1200, 675), (1080, 1080), (675, 1200))


def _warm_images() -> list[bytes]:
    # Why text: an image with text runs detection *and* recognition, warming both models.
    images = []
    for width, height in _WARM_SIZES:
        image = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(image)
        font = ImageFont.load_default(size=height // 20)
        for row, line in enumerate(["gm", "warm up 0x12", "CA: 0x979097B35B88A0c3275"]):
            draw.text((20, 40 + row * height // 8), line, fill="black", font=font)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        images.append(buffer.getvalue())
    return images


def _describe() -> str:
    """Return how this worker process's engine runs (runtime, precision, threads)."""
    assert _engine is not None, "worker process not initialised"
    return _engine.description


class OcrPoolError(RuntimeError):
    """An OCR worker process died; the pool was restarted."""

    kind: ErrorKind = "ocr_crashed"


class OcrPool:
    """Processes that each hold one warmed OCR engine."""

    def __init__(self, config: EngineConfig, processes: int, limits: ImageLimits) -> None:
        self._config = config
        self._processes = processes
        self._limits = limits
        self._executor: ProcessPoolExecutor | None = None
        # How the engine runs, once started: "openvino bf16, 1 thread(s)".
        self.engine = ""

    def _new_executor(self) -> ProcessPoolExecutor:
        # Why spawn: forking a process that runs an event loop and Kafka sockets is unsafe.
        return ProcessPoolExecutor(
            max_workers=self._processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._config, self._limits),
        )

    async def start(self) -> float:
        """Start the processes and warm every engine; return the seconds it took."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._executor = self._new_executor()
        for warm in _warm_images():
            await asyncio.gather(*(self.ocr(warm) for _ in range(self._processes)))
        self.engine = await loop.run_in_executor(self._executor, _describe)
        return loop.time() - started

    async def ocr(self, data: bytes) -> OcrOutput:
        """Decode and recognise an image in a worker process."""
        return await self._run(_ocr_bytes, data)

    async def read_unless_known(self, data: bytes, known: bytes) -> Reading:
        """Fingerprint an image and OCR it unless its hash is near one of ``known``."""
        return await self._run(_read_unless_known, data, known)

    async def verify_or_read(
        self, data: bytes, copy_of: OcrOutput, size: tuple[int, int], which: list[int]
    ) -> OcrOutput | None:
        """Return None when the lines ``which`` of ``copy_of`` read the same in this image,
        else its own reading (see ``_verify_or_read``)."""
        return await self._run(_verify_or_read, data, copy_of, size, which)

    async def _run(self, function: Callable[..., R], *args: object) -> R:
        if self._executor is None:
            raise RuntimeError("OcrPool.start() was not called")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function, *args)
        except BrokenProcessPool:
            # Why: a worker killed (e.g. by the OOM killer) breaks the whole pool; replace it
            # so the next image works, and fail only this one.
            log.error("OCR worker process died; restarting the OCR pool")
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
            raise OcrPoolError("OCR worker process died while reading this image") from None

    def close(self) -> None:
        """Stop the worker processes."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
