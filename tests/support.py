"""Helpers shared by integration tests and benchmarks: settings, worker processes, Kafka I/O."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from PIL import Image, ImageDraw
from pydantic import SecretStr

from app.kafka.consumers import stop_consumer
from app.kafka.local import LocalKafka, LocalKafkaCluster, free_port, terminate
from app.settings import Settings
from models.events import EVENT_ID_HEADER

REPO = Path(__file__).resolve().parents[1]
# The operator key of test workers (a fixed one: a test restarts workers on the same topics).
TEST_SECRET_KEY = "dGVzdHMtb25seS1vcGVyYXRvci1rZXktMzItYnl0ZXM"


def unique_settings(kafka: LocalKafka | LocalKafkaCluster, **overrides: Any) -> Settings:
    """Return settings with topic names and app id of their own, so tests do not mix."""
    tag = uuid.uuid4().hex[:8]
    web_port, operator_port = two_free_ports()
    values: dict[str, Any] = {
        "broker": kafka.bootstrap,
        "app_id": f"ocrstream-test-{tag}",
        "posts_topic": f"posts-{tag}",
        "images_topic": f"images-{tag}",
        "ocr_result_topic": f"ocr_result-{tag}",
        "ocr_error_topic": f"ocr_error-{tag}",
        "candidates_topic": f"candidates-{tag}",
        "control_topic": f"control-{tag}",
        "dead_letter_topic": f"dead-letter-{tag}",
        "webhooks_topic": f"webhooks-{tag}",
        "channel_topic_prefix": f"channel-{tag}-",
        "topic_partitions": 2,
        "web_port": web_port,
        "operator_port": operator_port,
        "ocr_processes": 1,
        "ocr_concurrency": 2,
        "fetch_allow_private": True,  # the image host is on loopback
        "secret_key": TEST_SECRET_KEY,
    }
    values.update(overrides)
    return Settings(**values)


def two_free_ports() -> tuple[int, int]:
    """Return two different ports free on loopback now (a worker's web and operator ports)."""
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def on_other_ports(settings: Settings) -> Settings:
    """Return ``settings`` for another worker on this machine: web and operator ports of its own."""
    web_port, operator_port = two_free_ports()
    return settings.model_copy(update={"web_port": web_port, "operator_port": operator_port})


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


def operator_url(settings: Settings) -> str:
    """Return the base URL of a worker's operator pages (/dashboard, /status/, /metrics)."""
    return f"http://127.0.0.1:{settings.operator_port}"


def settings_env(settings: Settings) -> dict[str, str]:
    """Return the OCRSTREAM_* environment that reproduces ``settings`` in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCRSTREAM_")}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"OCRSTREAM_{name.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    return env


def run_cli(
    settings: Settings, *args: str, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m app ARGS`` with ``settings`` as its environment; return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=REPO,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@dataclass
class Worker:
    """A real ``python -m app worker`` process."""

    settings: Settings
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"worker-{uuid.uuid4().hex[:6]}.log"

    def start(self, timeout_s: float = 120.0) -> None:
        """Start the worker and wait for Faust's 'Ready'."""
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", "worker", "--loglevel", "info"],
                cwd=self.workdir,
                env=settings_env(self.settings) | {"PYTHONPATH": str(REPO)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()[-4000:]}")
            if "[^Worker]: Ready" in self.log():
                return
            time.sleep(0.25)
        raise RuntimeError(f"worker not ready in {timeout_s}s:\n{self.log()[-4000:]}")

    def log(self) -> str:
        """Return everything the worker printed so far."""
        return self.log_path.read_text(errors="replace")

    def dump_tasks(self, wait_s: float = 2.0) -> None:
        """Have a running worker log the stack of every asyncio task (mode's SIGUSR1 handler)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(wait_s)

    def status(self) -> str:
        """Return the worker's /status/ JSON as text (or why it could not be read)."""
        url = f"{operator_url(self.settings)}/status/"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except OSError as exc:
            return f"(no status from {url}: {exc})"

    def kill(self) -> None:
        """Kill the worker with SIGKILL: no shutdown, no final commit (a crash)."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop the worker as an operator would (SIGTERM), killing it if it hangs."""
        process, self.process = self.process, None
        terminate(process, timeout_s)


async def serve_on_loopback(
    app: web.Application, shutdown_timeout_s: float = 60.0
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on a free loopback port; return its runner (``cleanup()`` stops it) and URL.

    A short ``shutdown_timeout_s`` keeps deliberately stalling handlers from holding cleanup.
    """
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def produce(
    bootstrap: str, topic: str, values: list[bytes], key: bytes | None = None
) -> None:
    """Produce raw records to a topic, in order, and wait until the broker has them all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        # Why started inside: a task cancelled while it starts must still close it.
        await producer.start()
        # Why not send_and_wait each: thousands of records took a minute one by one. The
        # producer keeps the order within a partition either way.
        pending = [await producer.send(topic, value=value, key=key) for value in values]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def consume(
    bootstrap: str, topic: str, count: int, timeout_s: float = 90.0, settle_s: float = 0.0
) -> list[dict[str, Any]]:
    """Read a topic from the start until ``count`` JSON records arrived (then ``settle_s`` more).

    Returns what was read when the time runs out, so a test can say what was missing.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            records.extend(json.loads(m.value) for ms in batch.values() for m in ms)
        settle_until = time.monotonic() + settle_s
        while time.monotonic() < settle_until:
            batch = await consumer.getmany(timeout_ms=250)
            records.extend(json.loads(m.value) for ms in batch.values() for m in ms)
    finally:
        await stop_consumer(consumer)
    return records


def post(mid: str, text: str, images: list[str], source: str = "x") -> bytes:
    """Return a post record as users produce it."""
    return json.dumps(
        {
            "source": source,
            "mid": mid,
            "sid": f"author-{mid}",
            "link": f"https://x.com/author/status/{mid}",
            "text": text,
            "images": images,
            "timestamp": "2026-11-24T10:00:00Z",
            "lang": "en",  # an unknown field: tolerated
        }
    ).encode()


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


async def event_ids(
    bootstrap: str, topic: str, want: int, timeout_s: float
) -> tuple[Counter[str], int]:
    """Read a topic until ``want`` distinct event ids (or the timeout): their counts, last time.

    The event id is the idempotency header every output carries; a count above one is a repeat.
    The time is the newest broker timestamp read, in milliseconds.
    """
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
    )  # fmt: skip
    await consumer.start()
    seen: Counter[str] = Counter()
    last = 0
    deadline = time.monotonic() + timeout_s
    try:
        while len(seen) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for messages in batch.values():
                for message in messages:
                    seen[dict(message.headers)[EVENT_ID_HEADER].decode()] += 1
                    last = max(last, message.timestamp)
    finally:
        await stop_consumer(consumer)
    return seen, last


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
