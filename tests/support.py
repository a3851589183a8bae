"""Helpers of the tests alone: Chromium, waits, admin calls, altered images.

What the benchmarks use too lives in harness/.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from PIL import Image, ImageDraw

from app.kafka.consumers import stop_consumer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium not installed (make test installs it as root; CI always has it)",
)


def chromium_command(profile: Path) -> list[str]:
    """Return headless Chromium's command line, quiet and offline, with a profile of its own."""
    assert CHROMIUM is not None
    return [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}",
    ]  # fmt: skip


async def wait_for(predicate: Any, timeout_s: float = 30.0) -> None:
    """Wait until an async predicate holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.3)
    raise AssertionError("condition not met in time")


async def admin_request(
    http: Any, admin_key: str, method: str, path: str, **body: Any
) -> dict[str, Any]:
    """Call an /admin route with ``body`` as JSON; assert it succeeded; return its ``data``."""
    headers = {"x-admin-key": admin_key}
    async with http.request(method, path, json=body, headers=headers) as response:
        answer = await response.json()
        assert response.status in (200, 201), answer
        data: dict[str, Any] = answer["data"]
        return data


def dripping_image(seconds_per_byte: float, total_bytes: int = 600) -> Any:
    """Return a handler that sends an image a byte at a time: never idle long enough for a
    read timeout, never done (until ``total_bytes``). A slow host, for real."""

    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)
        for _ in range(total_bytes):
            await response.write(b"\x89")
            await asyncio.sleep(seconds_per_byte)
        return response

    return drip


def altered(secret: str) -> str:
    """The same secret with its last character changed, so it is certainly wrong."""
    return secret[:-1] + ("A" if secret[-1] != "A" else "B")


def another_picture(png: bytes) -> bytes:
    """Return ``png``'s picture with a strip below it of faint random squares, as PNG.

    Every call gives a picture no other call gave, so neither the OCR cache (by bytes) nor its
    near-duplicate check can answer it: a real read. The text read stays the same.
    """
    with Image.open(io.BytesIO(png)) as original:
        picture = Image.new("RGB", (original.width, original.height + 48), "white")
        picture.paste(original.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(picture)
    for _ in range(6):
        x = random.randrange(picture.width - 32)
        y = original.height + random.randrange(16)
        draw.rectangle((x, y, x + 30, y + 30), fill=(215, 215, 215))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Seen:
    """Everything read from the output topics, with when it arrived."""

    records: dict[str, list[tuple[float, dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def values(self, topic: str) -> list[dict[str, Any]]:
        """Return the JSON values read from ``topic``."""
        return [value for _, value in self.records[topic]]


async def collect(bootstrap: str, topics: list[str], seen: Seen, stop: asyncio.Event) -> None:
    """Read ``topics`` from the start into ``seen``, with arrival times, until ``stop`` is set."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        metadata_max_age_ms=1000,
        max_partition_fetch_bytes=4 << 20,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            for messages in batch.values():
                for message in messages:
                    if message.value is not None:  # the test's own tombstones
                        seen.records[message.topic].append((now, json.loads(message.value)))
    finally:
        await stop_consumer(consumer)


async def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    """Wait until a plain predicate holds; fail saying ``what`` did not happen in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
