"""Would an int8 text detector (NNCF post-training quantization) make OCR fast enough? (issue 12)

    python -m venv /tmp/nncf && echo "$PWD/.venv/lib/python3.11/site-packages" \
        > /tmp/nncf/lib/python3.11/site-packages/project.pth && /tmp/nncf/bin/pip install nncf
    /tmp/nncf/bin/python bench/int8_detector.py [--image-dir bench/images] [--write FILE]

NNCF is not a dependency of ocrstream (nothing ships an int8 model yet): this measures whether
one is worth shipping. The detector of the default engine (OpenVINO, bf16 where the CPU has it,
one thread) is quantized on generated calibration images (none of the measured set), then the
same engine reads the image set with the bf16 detector (the baseline, same run) and with the
int8 one, at the default 960 px detector side and at 736 px. Reported: median ms per image and
per detector call, and the contract addresses read exactly (and falsely).
"""

from __future__ import annotations

import io
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.ocr.addresses import extract_addresses  # noqa: E402
from app.ocr.engine import EngineConfig, OcrEngine  # noqa: E402
from app.ocr.images import ImageLimits, decode_image  # noqa: E402
from bench.ocr_bench import image_set_arguments, show  # noqa: E402
from harness.variants import random_address  # noqa: E402

LIMITS = ImageLimits(max_pixels=50_000_000)
WORDS = "gm presale live fair launch no team tokens buy now moon chart airdrop ser".split()


def calibration_images(count: int = 16) -> list[bytes]:
    """Return generated tweet-like images: lines of words and addresses in several sizes."""
    rng = random.Random(7)
    images = []
    for i in range(count):
        width, height = rng.choice([(1200, 675), (1080, 1080), (800, 450), (600, 400)])
        image = Image.new("RGB", (width, height), rng.choice(["white", "#15202b", "#f5f8fa"]))
        draw = ImageDraw.Draw(image)
        ink = "white" if image.getpixel((0, 0)) == (21, 32, 43) else "black"
        y = 20
        while y < height - 40:
            size = rng.randint(max(10, height // 50), max(12, height // 12))
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
            if rng.random() < 0.3:
                line = f"CA: {random_address(i * 100 + y)}"
            font = ImageFont.load_default(size=size)
            draw.text((20, y), line, fill=ink, font=font)
            y += int(size * 1.6)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        images.append(buffer.getvalue())
    return images


class _Recorder:
    """Stands in for an OpenVINO infer request: passes calls on, records inputs or times."""

    def __init__(self, request: Any, inputs: list[Any] | None = None) -> None:
        self.request = request
        self.inputs = inputs
        self.seconds: list[float] = []

    def infer(self, inputs: list[Any]) -> Any:
        if self.inputs is not None:
            self.inputs.append(inputs[0].copy())
        started = time.perf_counter()
        result = self.request.infer(inputs=inputs)
        self.seconds.append(time.perf_counter() - started)
        return result

    def get_output_tensor(self) -> Any:
        return self.request.get_output_tensor()


def measure(engine: OcrEngine, rgbs: list[Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """Read every image twice (the first pass prepares shapes); time the second."""
    session = engine._ocr._load_det_model().session
    for _, rgb in rgbs:
        engine.read_rgb(rgb)
    recorder = _Recorder(session.session)
    session.session = recorder
    per_image, exact, total, false = [], 0, 0, 0
    try:
        for name, rgb in rgbs:
            started = time.perf_counter()
            output = engine.read_rgb(rgb)
            per_image.append(time.perf_counter() - started)
            want = {a["value"] for a in manifest[name]["addresses"]}
            got = {found.address for found in extract_addresses(output.text)}
            total, exact = total + len(want), exact + len(want & got)
            false += len(got - want)
    finally:
        session.session = recorder.request
    return {
        "ms": statistics.median(per_image) * 1000,
        "det_ms": statistics.median(recorder.seconds) * 1000,
        "addresses": f"{exact}/{total}",
        "false": false,
    }


def main() -> int:
    """Quantize the detector, measure both at two detector sides, print and write."""
    import nncf
    import openvino

    args, images = image_set_arguments(__doc__)
    manifest = {m["file"]: m for m in json.loads((args.image_dir / "manifest.json").read_text())}
    paths = [p for p in images if p.name in manifest]
    rgbs = [(p.name, decode_image(p.read_bytes(), LIMITS)) for p in paths]
    core = openvino.Core()
    rows = []
    for side in (960, 736):
        engine = OcrEngine(EngineConfig(threads=1, det_max_side=side))
        session = engine._ocr._load_det_model().session
        inputs: list[Any] = []
        session.session = _Recorder(session.session, inputs)
        for data in calibration_images():
            engine.read(data, LIMITS)
        session.session = session.session.request
        quantized = nncf.quantize(
            session.model,
            nncf.Dataset(inputs),
            preset=nncf.QuantizationPreset.PERFORMANCE,
            subset_size=len(inputs),
        )
        rows.append((f"bf16 detector, {side} px", measure(engine, rgbs, manifest)))
        properties = {
            "INFERENCE_NUM_THREADS": 1,
            "ENABLE_CPU_PINNING": False,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": engine.precision,
        }
        compiled = core.compile_model(quantized, "CPU", properties)
        session.session = compiled.create_infer_request()
        rows.append((f"int8 detector, {side} px", measure(engine, rgbs, manifest)))
    base = rows[0][1]["ms"]
    lines = [
        f"Command: see `bench/int8_detector.py` (NNCF {nncf.__version__}, OpenVINO "
        f"{openvino.__version__.split('-')[0]}; {len(paths)} images of "
        f"`{args.image_dir.relative_to(REPO)}`; one thread; the recogniser at "
        f"{rows[0][0].split()[0]} throughout; calibration on 16 generated images). Baseline: "
        "the default engine (bf16 detector, 960 px), same run.",
        "",
        "| detector | median ms per image | × baseline time | detector ms | addresses | false |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in rows:
        lines.append(
            f"| {label} | {row['ms']:.0f} | {row['ms'] / base:.2f}× | {row['det_ms']:.0f} | "
            f"{row['addresses']} | {row['false']} |"
        )
    section = "\n".join(lines) + "\n"
    show(section, args.write, "An int8 detector, measured")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
