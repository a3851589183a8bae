"""``ocrstream ocr``: OCR image files or URLs from the command line, without Kafka."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from app.fetch import FetchError, fetch_image, limits_from, new_session
from app.ocr.config import engine_config, image_limits
from app.ocr.engine import OcrEngine
from app.ocr.images import ImageError
from app.ocr.reading import reading_of
from app.settings import get_settings


async def run_ocr(sources: list[str], as_json: bool) -> int:
    """OCR each source in turn and print it; return 1 if any failed, else 0."""
    settings = get_settings()
    limits = limits_from(settings)
    started = time.perf_counter()
    engine = OcrEngine(engine_config(settings))
    print(f"engine ready in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    failed = 0
    async with new_session(limits) as session:
        for index, source in enumerate(sources, 1):
            try:
                if source.startswith(("http://", "https://")):
                    data = await fetch_image(session, source, limits)
                else:
                    data = Path(source).read_bytes()
                output = engine.read(data, image_limits(settings))
            except (OSError, FetchError, ImageError) as exc:
                failed += 1
                _emit(as_json, {"file": source, "error": str(exc)}, f"{source}: error: {exc}")
                continue
            # What the pipeline and /ocr give for the same image: addresses from QR codes too.
            reading = reading_of(output)
            record: dict[str, object] = {
                "file": source,
                "text": reading.text,
                "lines": [{"text": t, "score": s} for t, s in reading.lines],
                "buy_ca": [ca.model_dump() for ca in reading.buy_ca],
                "elapsed_ms": output.elapsed_ms,
            }
            if reading.qr is not None:
                record["qr"] = [code.model_dump() for code in reading.qr]
            if reading.truncated is not None:
                record["truncated"] = reading.truncated
            human = f"== {source} ({index}/{len(sources)}, {output.elapsed_ms:.0f} ms)\n"
            human += reading.text + "".join(
                f"\n[{ca.network}] {ca.address}" for ca in reading.buy_ca
            )
            human += "".join(f"\n[qr {code.kind}] {code.text}" for code in reading.qr or ())
            _emit(as_json, record, human)
    return 1 if failed else 0


def _emit(as_json: bool, record: dict[str, object], human: str) -> None:
    print(json.dumps(record, ensure_ascii=False) if as_json else human, flush=True)


def ocr(args: argparse.Namespace) -> int:
    """OCR image files or URLs and print the text (``ocrstream ocr``)."""
    return asyncio.run(run_ocr(args.images, as_json=args.json))
