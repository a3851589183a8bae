"""How well a difference hash tells a re-posted image from a different one (issue 16, step 1).

    .venv/bin/python bench/near_duplicates.py [--image-dir bench/images] [--write FILE]

No cache uses it yet: this measures the hash the near-duplicate cache is to key on, before it
is built. Each image of the set is re-encoded as JPEG quality 60, 80 and 95 and resized to
50% and 75% (then stored as PNG); a variant should land within a small Hamming distance of its
original, and every other original must stay farther than that (a false hit would deliver
another image's addresses). The hash is a 256-bit difference hash computed with Pillow alone
(17x16 grey pixels, one bit per horizontal gradient), which needs no extra dependency
(``imagehash`` brings SciPy and PyWavelets). The baseline is SHA-256 of the bytes, today's
cache key, in the same run: it hits no variant.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.ocr_bench import write_section  # noqa: E402

VARIANTS: dict[str, Callable[[Image.Image], bytes]] = {}


def _jpeg(quality: int) -> Callable[[Image.Image], bytes]:
    def encode(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue()

    return encode


def _resized(fraction: float) -> Callable[[Image.Image], bytes]:
    def encode(image: Image.Image) -> bytes:
        size = (max(1, round(image.width * fraction)), max(1, round(image.height * fraction)))
        buffer = io.BytesIO()
        image.resize(size, Image.Resampling.LANCZOS).save(buffer, format="PNG")
        return buffer.getvalue()

    return encode


VARIANTS.update(
    {
        "JPEG q60": _jpeg(60),
        "JPEG q80": _jpeg(80),
        "JPEG q95": _jpeg(95),
        "resized 50%": _resized(0.5),
        "resized 75%": _resized(0.75),
    }
)


def dhash(data: bytes, width: int = 16) -> int:
    """Return the difference hash of image bytes: width x width bits of horizontal gradient."""
    with Image.open(io.BytesIO(data)) as image:
        grey = image.convert("L").resize((width + 1, width), Image.Resampling.LANCZOS)
        pixels = list(grey.tobytes())  # one byte per grey pixel, row by row
    bits = 0
    for row in range(width):
        line = pixels[row * (width + 1) : (row + 1) * (width + 1)]
        for left, right in zip(line, line[1:], strict=False):
            bits = (bits << 1) | (left > right)
    return bits


def main() -> int:
    """Measure distances, hit rates at a few thresholds, and the cost; print and write."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image-dir", type=Path, default=REPO / "bench" / "images")
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    paths = sorted(p for p in args.image_dir.iterdir() if p.suffix in {".png", ".jpg"})
    originals = {p.name: p.read_bytes() for p in paths}
    hashes: dict[str, int] = {}
    hash_ms: list[float] = []
    for name, data in originals.items():
        started = time.perf_counter()
        hashes[name] = dhash(data)
        hash_ms.append((time.perf_counter() - started) * 1000)
    # Variant -> (its original, distance to it, nearest other original's distance).
    near: dict[str, list[int]] = {label: [] for label in VARIANTS}
    other: list[int] = []
    sha_hits = 0
    for name, data in originals.items():
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            for label, encode in VARIANTS.items():
                variant = encode(image)
                sha_hits += hashlib.sha256(variant).digest() == hashlib.sha256(data).digest()
                h = dhash(variant)
                near[label].append((h ^ hashes[name]).bit_count())
    names = list(hashes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            other.append((hashes[a] ^ hashes[b]).bit_count())
    lookup_started = time.perf_counter()
    for _ in range(100):  # a linear scan of 4,096 cached hashes, as the cache would do
        probe = hashes[names[0]]
        min((probe ^ h).bit_count() for h in list(hashes.values()) * (4096 // len(hashes)))
    lookup_ms = (time.perf_counter() - lookup_started) * 10
    closest_other = min(other)
    lines = [
        f"Command: `.venv/bin/python bench/near_duplicates.py` ({len(paths)} distinct images of "
        f"`{args.image_dir.relative_to(REPO)}`, 5 variants each; 256-bit difference hash with "
        "Pillow). Baseline: SHA-256 of the bytes (today's cache key), same run: "
        f"{sha_hits} of {len(paths) * len(VARIANTS)} variants hit.",
        "",
        "| variant | Hamming distance to its original: median | max |",
        "|---|---|---|",
    ]
    for label, distances in near.items():
        lines.append(f"| {label} | {statistics.median(distances):.0f} | {max(distances)} |")
    lines += [
        f"| two different images of the set ({len(other)} pairs) | "
        f"{statistics.median(other):.0f} | closest: {closest_other} |",
        "",
        "| threshold (bits of 256) | variants that would hit | different images that would hit |",
        "|---|---|---|",
    ]
    every = [d for distances in near.values() for d in distances]
    for threshold in (4, 8, 12, 16, 24):
        hits = sum(d <= threshold for d in every)
        false = sum(d <= threshold for d in other)
        lines.append(f"| ≤ {threshold} | {hits}/{len(every)} ({hits / len(every):.0%}) | {false} |")
    lines += [
        "",
        f"Cost: hashing {statistics.median(hash_ms):.1f} ms median per image (decoding "
        f"included); a lookup among 4,096 cached hashes {lookup_ms:.2f} ms (linear scan).",
    ]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(args.write, "Near-duplicate images: the hash, measured", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
