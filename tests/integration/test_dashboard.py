"""The dashboard, rendered by a real headless Chromium while posts flow through a real worker."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from PIL import Image

from app.kafka.local import LocalKafka
from app.keys.admin import admin_over_kafka
from harness.records import consume, post, produce
from harness.workers import operator_url, unique_settings
from tests.support import chromium_command, needs_chromium

pytestmark = pytest.mark.integration

# Set to a directory (e.g. docs/img) to keep the screenshots: `make screenshots` does.
KEEP_SCREENSHOTS = os.environ.get("OCRSTREAM_SCREENSHOT_DIR")
IMAGES = ["s00_promo.jpg", "s10_sol.jpg", "s30_promo.png", "s02_sol.png", "s19_tweet.png"]
THROUGHPUT_GREEN = (0x3F, 0xB9, 0x50)  # the "images read" line


def _render(url: str, profile: Path, screenshot: Path | None = None) -> str:
    """Load the page in headless Chromium, let its script poll for 3 s, return the DOM."""
    flags = [*chromium_command(profile), "--virtual-time-budget=3000", "--hide-scrollbars"]
    if screenshot is not None:
        subprocess.run(
            [*flags, f"--screenshot={screenshot}", "--window-size=1400,1700", url],
            capture_output=True,
            timeout=60,
            check=True,
        )
    done = subprocess.run(
        [*flags, "--dump-dom", url], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def _get(url: str) -> tuple[bytes, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), response.headers


def _status(base: str) -> dict[str, Any]:
    body, _ = _get(f"{base}/status/")
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def _shown(dom: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
    assert match, f"#{element_id} not on the page"
    return match.group(1)


def _total(dom: str, label: str) -> int:
    match = re.search(rf"<td>{re.escape(label)}</td><td class=\"n\">([\d,]+)</td>", dom)
    return int(match.group(1).replace(",", "")) if match else 0


def _line_points(dom: str, series: str) -> int:
    match = re.search(rf'<polyline points="([^"]*)"[^>]*data-series="{series}"', dom)
    assert match, f"no {series} line on the page"
    return len(match.group(1).split())


def _pixels_near(
    image: Image.Image, colour: tuple[int, int, int], box: tuple[int, int, int, int]
) -> int:
    """Return how many pixels of the box are within 24 levels of ``colour`` on each channel."""
    region = image.convert("RGB").crop(box)
    width, height = region.size
    pixels = region.load()
    assert pixels is not None
    near = 0
    for x in range(width):
        for y in range(height):
            pixel = pixels[x, y]
            assert isinstance(pixel, tuple)
            near += all(abs(a - b) <= 24 for a, b in zip(pixel, colour, strict=True))
    return near


@needs_chromium
async def test_the_dashboard_shows_the_pipeline_charts_results_and_errors(
    kafka: LocalKafka, image_host: str, start_worker: Any, tmp_path: Path
) -> None:
    settings = unique_settings(kafka)
    start_worker(settings)
    created = await admin_over_kafka(settings).create("dashboard")
    assert created.record is not None
    key_id = created.record.key_id
    assert (await admin_over_kafka(settings).add_keywords(key_id, ["pepe"])) is not None
    base = operator_url(settings)
    url = f"{base}/dashboard"
    shots = Path(KEEP_SCREENSHOTS) if KEEP_SCREENSHOTS else tmp_path

    before = _render(url, tmp_path / "profile", screenshot=shots / "dashboard-idle.png")
    assert _shown(before, "state") == "live"
    assert key_id in before and "no results yet" in before
    assert _total(before, "Posts read") == 0
    assert "collecting: one point every 5 s" in before or "data-series" in before

    names = ["s10_sol.jpg", "s02_sol.png", "s30_promo.png"]
    posts = [post(f"d{i}", "dash", [f"{image_host}/{name}"]) for i, name in enumerate(names)]
    posts.append(b"not json")
    # An image refused by policy (not http): counted apart, and no box turns red for it.
    posts.append(post("refused", "dash", ["ftp://files.example/a.png"]))
    await produce(kafka.bootstrap, settings.posts_topic, posts)
    assert len(await consume(kafka.bootstrap, settings.ocr_result_topic, count=3)) == 3
    # The charts draw the worker's history, one point every 5 s: wait for the images in it.
    deadline = time.monotonic() + 30
    while not any(p["rates"]["ocr_results"] > 0 for p in _status(base)["history"]):
        assert time.monotonic() < deadline, _status(base)["history"]
        time.sleep(1)
    time.sleep(5)  # one more point, so the line has a segment after the burst

    shot = shots / "dashboard-burst.png"
    after = _render(url, tmp_path / "profile", screenshot=shot)
    assert _total(after, "Posts read") == 5
    assert _total(after, "Images read (ocr_result)") == 3
    assert _line_points(after, "images read") >= 2 and _line_points(after, "p50, latest step:") >= 1
    # Before: the OCR box and the chart's legend both said "p50" of different windows.
    assert re.search(r"p50 · p95 of the last [\d,]+ <b>[\d,]+ · [\d,]+ ms</b>", after), after
    assert "refused by policy <b>1</b>" in after and "stage bad" not in after
    assert _total(after, "Images refused by policy (not an error)") == 1
    assert f'<td class="id">{key_id}</td>' in after  # an id never wraps mid-id
    # The address book's last hour: the addresses the images showed, one post each.
    bonk = "DKwfFc2KA3i22DmxzLQzqi9weodLJXDxCtDpYaS9QJqc"
    assert f"solana:{bonk[:12]}…{bonk[-8:]}" in after
    # The last results: a thumbnail each (from memory), the addresses, the matched keyword.
    assert after.count('src="/dashboard/thumbnail/') == 3
    assert "0x979097B35B88A0c32751f9732d5d37c609B3f1Ad" in after
    assert "DKwfFc2KA3i22DmxzLQzqi9weodLJXDxCtDpYaS9QJqc" in after
    assert '<span class="pill kw">pepe</span>' in after
    assert "invalid post" in after  # the recent errors, with their kind
    assert '<span class="err">dead letter</span>' in after
    # The screenshot: the throughput chart (top left, below the pipeline) has its green line.
    with Image.open(shot) as image:
        assert _pixels_near(image, THROUGHPUT_GREEN, (24, 200, 700, 520)) > 40

    thumb_url = re.search(r'src="(/dashboard/thumbnail/\d+)"', after)
    assert thumb_url
    body, headers = _get(base + thumb_url[1])
    assert headers["Content-Type"] in {"image/png", "image/jpeg"}
    assert headers["X-Content-Type-Options"] == "nosniff" and body[:2] in {b"\x89P", b"\xff\xd8"}
    pretty, _ = _get(f"{base}/status/?pretty")
    assert pretty.startswith(b'{\n  "app_id"')
    for faust_page in ("/router/", "/table/"):  # linked from the page's header
        assert f'href="{faust_page}"' in after
        _get(base + faust_page)  # answers (urllib raises on an error status)

    # Under a steady flow (text posts at ~20/s, an image in every tenth), the pipeline's boxes
    # show rates while the page polls.
    stop = asyncio.Event()
    flowing = asyncio.create_task(_steady_flow(settings, image_host, stop))
    await asyncio.sleep(8)
    steady = await asyncio.to_thread(_render, url, tmp_path / "profile", shots / "dashboard.png")
    stop.set()
    assert await flowing > 100
    assert _rate(steady, "Posts read") > 0, steady


def _rate(dom: str, stage: str) -> float:
    match = re.search(rf'<h3>{re.escape(stage)}</h3><div class="rate">([\d.,]+)<small>', dom)
    assert match, f"no rate for {stage}"
    return float(match.group(1).replace(",", ""))


async def _steady_flow(settings: Any, image_host: str, stop: asyncio.Event) -> int:
    """Produce posts at about 20 a second until told to stop; return how many."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker, linger_ms=5)
    await producer.start()
    sent = 0
    try:
        while not stop.is_set():
            name = IMAGES[sent // 10 % len(IMAGES)]
            images = [f"{image_host}/{name}"] if sent % 10 == 0 else []
            text = "pepe again" if sent % 4 == 0 else "gm"
            await producer.send(settings.posts_topic, post(f"flow{sent}", text, images))
            sent += 1
            await asyncio.sleep(0.05)
    finally:
        await producer.stop()
    return sent
