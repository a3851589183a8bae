"""What ``buy_ca`` finds: in text that holds no address (must be nothing), in images of addresses.

Text: a corpus of transaction hashes, hex dumps, base64 blobs, JWTs and links with tokens
(harness/address_corpus.py), and well-formed addresses of every network in the layouts posts
use, through today's extractor and the one before TON, Sui and the base64 rules (commit
b1b3a15, loaded from git), in the same run.

Images: each address printed on a promo card ("printed"), the card rotated, blurred, darkened
and noised ("photographed"), and the card as a 75% JPEG at quality 40 ("JPEG'd"), read by our
engine and by rapidocr-onnxruntime 1.4.4 (the baseline; bench/setup-baselines installs it).

    .venv/bin/python bench/addresses.py [--texts N] [--per-network N] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image, ImageDraw, ImageFilter, ImageFont  # noqa: E402

from app.ocr.addresses import extract_addresses  # noqa: E402
from bench.ocr_bench import BASELINE_PY, RUNNER, run_json, show  # noqa: E402
from harness.address_corpus import LAYOUTS, an_address, not_an_address  # noqa: E402

BEFORE = "b1b3a15"  # main before issue 26
FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)

Extractor = Callable[[str], list[tuple[str, str]]]


def extractor_before() -> Extractor:
    """Return the extractor of commit ``BEFORE`` (loaded from git), as found pairs."""
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:app/ocr/addresses.py"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "addresses_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("addresses_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lambda text: [(ca.network, ca.address) for ca in module.extract_addresses(text)]


def now(text: str) -> list[tuple[str, str]]:
    """Return what today's extractor finds, as (network, address) pairs."""
    return [(ca.network, ca.address) for ca in extract_addresses(text)]


def text_corpus(count: int, extractors: dict[str, Extractor]) -> dict[str, Any]:
    """Count false addresses per kind of text, and addresses found per network and layout."""
    rng = random.Random(26)
    negatives = [not_an_address(rng) for _ in range(count)]
    positives = [an_address(rng) for _ in range(count // 5)]
    results: dict[str, Any] = {}
    for name, extract in extractors.items():
        started = time.perf_counter()
        false = Counter(kind for kind, text in negatives if extract(text))
        elapsed_us = (time.perf_counter() - started) / count * 1e6
        found: Counter[str] = Counter()
        tried: Counter[str] = Counter()
        for index, (network, address) in enumerate(positives):
            layout = LAYOUTS[index % len(LAYOUTS)]
            if "SOL-" in layout and network != "solana":
                layout = "{}"  # a Solana swap link holds only a Solana address
            tried[network] += 1
            found[network] += extract(layout.format(address)) == [(network, address)]
        results[name] = {"false": false, "us_per_text": elapsed_us, "found": found, "tried": tried}
    results["kinds"] = Counter(kind for kind, _ in negatives)
    return results


def card(address: str, rng: random.Random) -> Image.Image:
    """Return a promo card printing ``address`` on a line of its own."""
    font_path = next((f for f in rng.sample(FONTS, len(FONTS)) if Path(f).exists()), None)
    size = 30 if len(address) <= 48 else 22
    font: Any = (
        ImageFont.truetype(font_path, size) if font_path else ImageFont.load_default(size=size)
    )
    title: Any = ImageFont.load_default(size=40)
    width = max(720, int(font.getlength(f"CA: {address}")) + 80)
    image = Image.new("RGB", (width, 300), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), "$FROG is live", fill=(20, 20, 20), font=title)
    draw.text((40, 130), f"CA: {address}", fill=(10, 10, 10), font=font)
    draw.text((40, 210), "fair launch, LP burnt", fill=(60, 60, 60), font=font)
    return image


def photographed(image: Image.Image, rng: random.Random) -> Image.Image:
    """Return the card as a phone photo of a screen: turned, soft, dimmer, grainy."""
    turned = image.rotate(rng.uniform(-3, 3), expand=True, fillcolor=(200, 200, 200))
    soft = turned.filter(ImageFilter.GaussianBlur(0.8))
    dim = Image.eval(soft, lambda v: int(v * 0.85 + 10))
    noise = Image.effect_noise(dim.size, 18).convert("RGB")
    return Image.blend(dim, noise, 0.08)


def jpegged(image: Image.Image) -> Image.Image:
    """Return the card as a 75% copy saved at JPEG quality 40."""
    small = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=40)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def image_set(per_network: int, directory: Path) -> list[tuple[Path, str, str, str]]:
    """Write the images; return (path, network, address, variant) for each."""
    rng = random.Random(2026)
    wanted: Counter[str] = Counter()
    made: list[tuple[Path, str, str, str]] = []
    networks = ("evm", "solana", "tron", "ton", "sui")
    while min(wanted[network] for network in networks) < per_network:
        network, address = an_address(rng)
        if wanted[network] >= per_network * (2 if network == "ton" else 1):
            continue
        wanted[network] += 1
        printed = card(address, rng)
        for variant, image in (
            ("printed", printed),
            ("photographed", photographed(printed, rng)),
            ("JPEG'd", jpegged(printed)),
        ):
            path = directory / f"{len(made):04d}.png"
            image.save(path)
            made.append((path, network, address, variant))
    return made


def read_images(made: list[tuple[Path, str, str, str]]) -> dict[str, dict[str, Any]]:
    """OCR every image with each engine; return found counts and false addresses per engine."""
    engines = [
        ("ours (rapidocr 3.x, OpenVINO)", "ours", Path(sys.executable), "2"),
        ("rapidocr-onnxruntime 1.4.4 (baseline)", "rapidocr-onnxruntime-1.4.4", BASELINE_PY, "0"),
    ]
    results: dict[str, dict[str, Any]] = {}
    for label, engine, python, threads in engines:
        if not python.exists():
            print(f"skip {label}: not installed (run bench/setup-baselines)", flush=True)
            continue
        print(f"reading {len(made)} images with {label} ...", flush=True)
        measured = run_json(
            [str(python), str(RUNNER), engine, "latency", "--threads", threads,
             *(str(path) for path, *_ in made)]
        )  # fmt: skip
        by_path = {Path(image["file"]): image["lines"] for image in measured["images"]}
        found: Counter[str] = Counter()
        tried: Counter[str] = Counter()
        false = 0
        for path, network, address, variant in made:
            pairs = now("\n".join(by_path[path]))
            tried[f"{network}/{variant}"] += 1
            found[f"{network}/{variant}"] += (network, address) in pairs
            false += sum(pair != (network, address) for pair in pairs)
        results[label] = {"found": found, "tried": tried, "false": false}
    return results


def render(texts: dict[str, Any], images: dict[str, dict[str, Any]], count: int) -> str:
    """Return the benchmark's section as Markdown."""
    lines = [
        f"Command: `bench/setup-baselines && .venv/bin/python bench/addresses.py --texts {count}"
        " --write docs/benchmarks.md`.",
        "",
        f"**Text that holds no address** ({count:,} pieces, seed 26): how many yield an address.",
        "",
        "| kind of text | pieces | today | before (b1b3a15) |",
        "|---|---|---|---|",
    ]
    names = [name for name in texts if name != "kinds"]
    for kind, pieces in sorted(texts["kinds"].items()):
        cells = " | ".join(str(texts[name]["false"][kind]) for name in names)
        lines.append(f"| {kind} | {pieces:,} | {cells} |")
    cells = " | ".join(str(sum(texts[name]["false"].values())) for name in names)
    lines.append(f"| **all** | {count:,} | {cells} |")
    per_text = " · ".join(f"{name} {texts[name]['us_per_text']:.0f} µs" for name in names)
    lines += [
        "",
        f"Time per piece of text: {per_text}.",
        "",
        "**Addresses in text** (each in one of the layouts posts use: after `CA:`, alone, on its"
        " own line, in explorer, swap and query links): found exactly.",
        "",
        "| network | addresses | today | before |",
        "|---|---|---|---|",
    ]
    for network, tried in sorted(texts[names[0]]["tried"].items()):
        cells = " | ".join(f"{texts[name]['found'][network] / tried:.0%}" for name in names)
        lines.append(f"| {network} | {tried:,} | {cells} |")
    if images:
        labels = list(images)
        lines += [
            "",
            "**Addresses in images**, read by each engine and found exactly by today's extractor"
            " (printed on a card; the card photographed: turned up to 3°, blurred, dimmed,"
            " grainy; the card as a 75% JPEG at quality 40).",
            "",
            "| network / image | images | " + " | ".join(labels) + " |",
            "|---|---|" + "---|" * len(labels),
        ]
        first = images[labels[0]]
        for key, tried in sorted(first["tried"].items()):
            cells = " | ".join(f"{images[label]['found'][key]}/{tried}" for label in labels)
            lines.append(f"| {key} | {tried} | {cells} |")
        totals = " | ".join(
            f"{sum(images[label]['found'].values())}/{sum(images[label]['tried'].values())}"
            for label in labels
        )
        lines.append(f"| **all** | {sum(first['tried'].values())} | {totals} |")
        falses = ", ".join(f"{label}: {images[label]['false']}" for label in labels)
        lines += ["", f"Addresses reported that the image does not show: {falses}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Measure both corpora and print (and optionally write) the section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=300_000)
    parser.add_argument("--per-network", type=int, default=10)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    print(f"text corpus: {args.texts:,} pieces ...", flush=True)
    texts = text_corpus(args.texts, {"today": now, "before": extractor_before()})
    print(json.dumps({k: v for k, v in texts.items() if k != "kinds"}, default=dict)[:2000])
    images: dict[str, dict[str, Any]] = {}
    if args.per_network > 0:
        with tempfile.TemporaryDirectory() as directory:
            images = read_images(image_set(args.per_network, Path(directory)))
    show(render(texts, images, args.texts), args.write, "Token addresses (buy_ca)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
