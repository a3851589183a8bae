"""OCR benchmark: our engine configuration beside the alternatives, in one run.

    bench/setup-baselines                       # once: baseline venv (+ Tesseract when root)
    .venv/bin/python bench/ocr_bench.py [--write docs/benchmarks.md]

For each engine: cold start, median/p95 ms per image (one process), images/s using both cores,
peak RSS, character error rate (CER) against the ground truth, contract addresses read exactly,
and false addresses on images that have none. Ratios are against rapidocr-onnxruntime 1.4.4 with
defaults (the user's original choice), measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.ocr.addresses import extract_addresses  # noqa: E402

# Why a default in the repository: a clone must run the benchmarks; --image-dir takes any
# directory of images with a manifest.json of the same shape (e.g. the full 40-image dev set).
DATA = REPO / "bench" / "images"
RUNNER = REPO / "bench" / "engine_runner.py"
BASELINE_PY = REPO / "bench" / ".venv-baseline" / "bin" / "python"
NETWORK = {"evm": "evm", "sol": "solana"}

# (label, engine, interpreter, processes x threads for the throughput run)
ENGINES: list[tuple[str, str, Path, int, int]] = [
    ("rapidocr-onnxruntime 1.4.4, defaults (baseline)", "rapidocr-onnxruntime-1.4.4",
     BASELINE_PY, 1, 0),
    ("ours before: rapidocr 3.10 on ONNX Runtime f32, 2 proc x 1 thread",
     "ours:onnxruntime:f32", Path(sys.executable), 2, 1),
    ("ours: OpenVINO f32, 2 proc x 1 thread", "ours:openvino:f32", Path(sys.executable), 2, 1),
    ("ours: OpenVINO bf16, 2 proc x 1 thread", "ours:openvino:bf16", Path(sys.executable), 2, 1),
    ("ours (default): OpenVINO bf16, 2 proc x 2 threads", "ours:openvino:bf16",
     Path(sys.executable), 2, 2),
    ("tesseract 5 (Debian), 2 proc", "tesseract", Path(sys.executable), 2, 1),
]  # fmt: skip


def levenshtein(a: str, b: str) -> int:
    """Return the edit distance between two strings."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def run_json(command: list[str]) -> dict[str, Any]:
    """Run a runner command and return the JSON it printed last."""
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def score(manifest: list[dict[str, Any]], measured: dict[str, Any]) -> dict[str, float]:
    """Return CER, address exact-match rate and false addresses for one engine's output."""
    by_file = {Path(img["file"]).name: img for img in measured["images"]}
    errors = chars = expected_total = exact = false_found = 0
    for entry in manifest:
        lines = by_file[entry["file"]]["lines"]
        truth = "\n".join(entry["lines"])
        errors += levenshtein("\n".join(lines), truth)
        chars += len(truth)
        found = {(ca.network, ca.address) for ca in extract_addresses("\n".join(lines))}
        expected = {(NETWORK[a["kind"]], a["value"]) for a in entry["addresses"]}
        expected_total += len(expected)
        exact += len(expected & found)
        if not expected:
            false_found += len(found)
        else:
            false_found += len(found - expected)
    ms = [img["ms"] for img in measured["images"]]
    return {
        "cer": errors / chars,
        "addresses_exact": exact / expected_total,
        "false_addresses": false_found,
        "median_ms": statistics.median(ms),
        "p95_ms": statistics.quantiles(ms, n=20)[18],
    }


def main() -> int:
    """Measure every available engine and print (and optionally write) the table."""
    global DATA
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--image-dir",
        type=Path,
        default=None,
        help="a directory of images with a manifest.json (default: bench/images)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="passes over the set (throughput)")
    parser.add_argument("--write", type=Path, help="write the results into this markdown file")
    args = parser.parse_args()
    DATA = args.image_dir or DATA

    manifest = json.loads((DATA / "manifest.json").read_text())
    paths = [str(DATA / entry["file"]) for entry in manifest]
    rows = []
    for label, engine, python, procs, threads in ENGINES:
        if not python.exists() or (engine == "tesseract" and not shutil.which("tesseract")):
            print(f"skip {label}: not installed (run bench/setup-baselines)", flush=True)
            continue
        print(f"measuring {label} ...", flush=True)
        lat_threads = 0 if engine == "rapidocr-onnxruntime-1.4.4" else threads
        latency = run_json(
            [str(python), str(RUNNER), engine, "latency", "--threads", str(lat_threads), *paths]
        )
        tput = run_json(
            [str(python), str(RUNNER), engine, "throughput", "--procs", str(procs),
             "--threads", str(threads), "--rounds", str(args.rounds), *paths]
        )  # fmt: skip
        rows.append({"label": label, **score(manifest, latency), **latency, **tput})
        row = rows[-1]
        print(
            f"  cold {row['cold_start_s']:.1f}s  median {row['median_ms']:.0f} ms  "
            f"p95 {row['p95_ms']:.0f} ms  {row['images_per_s']:.2f} img/s  "
            f"CER {row['cer']:.2%}  addresses {row['addresses_exact']:.0%}",
            flush=True,
        )

    table = render(rows, len(manifest), args.rounds)
    show(table, args.write, "OCR engines")
    return 0


def shown_path(path: Path) -> str:
    """Return ``path`` relative to the repository when it is inside it."""
    return str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)


def render(rows: list[dict[str, Any]], n_images: int, rounds: int) -> str:
    """Return the results as a markdown section."""
    base = rows[0] if rows and "baseline" in rows[0]["label"] else None
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{n_images} images of `{shown_path(DATA)}` (latency: one pass in one process; "
        f"throughput: {rounds} passes across the processes shown).",
        "",
        "Command: `bench/setup-baselines && .venv/bin/python bench/ocr_bench.py "
        "--write docs/benchmarks.md`",
        "",
        "| engine | cold start s | median ms | p95 ms | img/s (both cores) | peak RSS MB "
        "| CER | addresses exact | false addresses | throughput × baseline "
        "| median latency × baseline |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rss = max(row["peak_rss_mb"], row["peak_child_rss_mb"])
        tput_ratio = f"{row['images_per_s'] / base['images_per_s']:.2f}×" if base else "-"
        lat_ratio = f"{row['median_ms'] / base['median_ms']:.2f}×" if base else "-"
        lines.append(
            f"| {row['label']} | {row['cold_start_s']:.1f} | {row['median_ms']:.0f} "
            f"| {row['p95_ms']:.0f} | {row['images_per_s']:.2f} | {rss:.0f} "
            f"| {row['cer']:.2%} | {row['addresses_exact']:.1%} | {row['false_addresses']} "
            f"| {tput_ratio} | {lat_ratio} |"
        )
    return "\n".join(lines)


def image_set_arguments(description: str | None) -> tuple[argparse.Namespace, list[Path]]:
    """Parse ``--image-dir`` (bench/images) and ``--write``; return them and the set's images."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--image-dir", type=Path, default=DATA)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    paths = sorted(p for p in args.image_dir.iterdir() if p.suffix in {".png", ".jpg"})
    return args, paths


def cpu_class() -> str:
    """Return this machine's CPU and its class, as every OCR figure is to be read against.

    The classes the project's machines come in: Intel with AMX, AMD with AVX512_BF16, AMD
    without AVX-512 (the OCR engine's speed depends on which).
    """
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")  # fmt: skip
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines()
                      if line.startswith("flags")), []))  # fmt: skip
    vendor = "AMD" if "AMD" in model.upper() else "Intel" if "INTEL" in model.upper() else "CPU"
    if "amx_bf16" in flags:
        kind = f"{vendor} with AMX"
    elif "avx512_bf16" in flags:
        kind = f"{vendor} with AVX512_BF16"
    elif "avx512f" in flags:
        kind = f"{vendor} with AVX-512, no bf16"
    else:
        kind = f"{vendor} without AVX-512"
    return f"{model}, {os.cpu_count()} cores (class: {kind})"


def show(body: str, path: Path | None, title: str) -> None:
    """Print a benchmark's section, and write it into ``path`` (docs/benchmarks.md) if given.

    The section starts with the CPU it was measured on, and its class.
    """
    body = f"CPU: {cpu_class()}.\n\n{body}"
    print("\n" + body)
    if path is not None:
        write_section(path, title, body)


def write_section(path: Path, title: str, body: str) -> None:
    """Replace (or append) the section ``## title`` of a markdown file with ``body``."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start_marker, end_marker = f"<!-- {title}: start -->", f"<!-- {title}: end -->"
    section = f"{start_marker}\n## {title}\n\n{body}\n{end_marker}"
    if start_marker in text:
        before, rest = text.split(start_marker, 1)
        after = rest.split(end_marker, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
