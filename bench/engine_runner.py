"""Run one OCR engine over a set of images and print JSON measurements (used by ocr_bench.py).

It runs in the interpreter that has the engine installed (the baseline lives in its own venv,
so only the "ours" branch imports the project); every engine gets the same Pillow-decoded RGB.

    python bench/engine_runner.py ENGINE latency IMAGE...
    python bench/engine_runner.py ENGINE throughput --procs N --rounds R IMAGE...
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before the heavy imports: cold start counts them

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

Engine = Callable[[Any], list[str]]


def build(name: str, threads: int) -> Engine:
    """Return a function image -> text lines for the named engine configuration."""
    if name.startswith("ours"):
        # The service's own engine (this branch runs in the project's venv); "ours:RUNTIME:
        # PRECISION" picks the runtime (openvino, onnxruntime) and precision (auto, bf16, f32).
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from app.ocr.engine import EngineConfig, OcrEngine

        _, runtime, precision = (name.split(":") + ["openvino", "auto"])[:3]
        side = int(os.environ.get("BENCH_DET_SIDE", "960"))
        config = EngineConfig(
            det_max_side=side,
            threads=threads,
            runtime=runtime,  # type: ignore[arg-type]
            precision=precision,  # type: ignore[arg-type]
        )
        ours = OcrEngine(config)
        return lambda rgb: [text for text, _ in ours.recognize(rgb).lines]
    if name == "rapidocr-onnxruntime-1.4.4":
        from rapidocr_onnxruntime import RapidOCR as Legacy

        legacy = Legacy()  # the user's original choice: defaults

        def run_legacy(rgb: Any) -> list[str]:
            result, _ = legacy(rgb)
            return [line[1] for line in result or []]

        return run_legacy
    if name == "tesseract":
        exe = shutil.which("tesseract")
        assert exe, "tesseract not installed"

        def run_tesseract(rgb: Any) -> list[str]:
            with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
                Image.fromarray(rgb).save(tmp.name)
                out = subprocess.run(
                    [exe, tmp.name, "-", "--psm", "3"],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={"OMP_THREAD_LIMIT": str(threads)},
                )
            return [line.strip() for line in out.stdout.splitlines() if line.strip()]

        return run_tesseract
    raise SystemExit(f"unknown engine {name}")


def load(path: str) -> Any:
    """Decode an image to an RGB array, as the service does."""
    return np.asarray(Image.open(path).convert("RGB"))


def latency(name: str, paths: list[str], threads: int) -> None:
    """OCR each image once in this process; print cold start, per-image ms and texts."""
    engine = build(name, threads)
    images = [load(p) for p in paths]
    first = engine(images[0])
    cold_start_s = time.perf_counter() - STARTED
    del first
    per_image = []
    for path, rgb in zip(paths, images, strict=True):
        t0 = time.perf_counter()
        lines = engine(rgb)
        per_image.append({"file": path, "ms": (time.perf_counter() - t0) * 1000, "lines": lines})
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {"cold_start_s": cold_start_s, "images": per_image, "peak_rss_mb": rss_kb / 1024}
        )
    )


_worker_engine: Engine | None = None


def _init(name: str, threads: int) -> None:
    global _worker_engine
    _worker_engine = build(name, threads)


def _work(path: str) -> int:
    assert _worker_engine is not None
    return len(_worker_engine(load(path)))


def throughput(name: str, paths: list[str], procs: int, threads: int, rounds: int) -> None:
    """OCR every image ``rounds`` times across ``procs`` processes; print images/s."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(procs, initializer=_init, initargs=(name, threads)) as pool:
        pool.map(_work, paths[:procs] * 2)  # warm every process
        t0 = time.perf_counter()
        pool.map(_work, paths * rounds, chunksize=1)
        elapsed = time.perf_counter() - t0
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "images_per_s": len(paths) * rounds / elapsed,
                "procs": procs,
                "threads": threads,
                "peak_child_rss_mb": children_kb / 1024,
            }
        )
    )


def main() -> None:
    """Parse arguments and run one measurement."""
    parser = argparse.ArgumentParser()
    parser.add_argument("engine")
    parser.add_argument("mode", choices=["latency", "throughput"])
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()
    if args.mode == "latency":
        latency(args.engine, args.images, args.threads)
    else:
        throughput(args.engine, args.images, args.procs, args.threads, args.rounds)


if __name__ == "__main__":
    main()
