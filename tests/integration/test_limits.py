"""Records near and over Kafka's size limit, and sends that can never finish, on real brokers.

Each test runs a real worker while another key's ordinary posts flow (one every 0.25 s) and
checks that they keep arriving within seconds: a poison record costs only itself. On the
session's broker (Kafka's default 1 MB): a post of 99,993 control characters (before: a 1.2 MB
candidate retried for ever, and no post of any key delivered again, across restarts) and 16
copies of an image holding a grid of 144 QR codes (before: a 1 MB ocr_result, its OCR slots held
for ever). On a broker started with ``message.max.bytes`` 64 KB: bundles split to fit, and each
record still over the limit ends as its post's dead letter or its image's ocr_error. And a
batch whose records the broker can never take: SIGTERM still stops the worker in time, and the
next worker reads the batch again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.kafka.consumers import stop_consumer
from app.kafka.local import LocalKafka
from app.settings import Settings
from harness.loopback import serve_on_loopback
from harness.records import post, produce
from harness.workers import Worker, unique_settings
from tests.conftest import DATA
from tests.hostile import control_text, qr_grid_png
from tests.support import Seen, collect, wait_until

pytestmark = pytest.mark.integration

ADMIN = "limits-admin"
SMALL_LIMIT = 64 * 1024
STOP_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def small_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A second real broker that takes records of at most 64 KB (message.max.bytes)."""
    broker = LocalKafka(
        tmp_path_factory.mktemp("kafka-64k"),
        broker_config={"message.max.bytes": str(SMALL_LIMIT)},
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
async def attack_host() -> AsyncIterator[str]:
    """Serve tests/data under /img/ and the QR grid under /qr/<n>.png (one picture, many URLs)."""
    grid = qr_grid_png()

    async def qr(request: web.Request) -> web.Response:
        return web.Response(body=grid, content_type="image/png")

    app = web.Application()
    app.router.add_static("/img/", DATA)
    app.router.add_get("/qr/{n}.png", qr)
    runner, base = await serve_on_loopback(app, shutdown_timeout_s=1.0)
    yield base
    await runner.cleanup()


class Flow:
    """A key's ordinary posts, one every 0.25 s, and when each was produced."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.produced: dict[str, float] = {}
        self._stopping = asyncio.Event()
        self._task = asyncio.ensure_future(self._run(bootstrap, topic))

    async def _run(self, bootstrap: str, topic: str) -> None:
        i = 0
        while not self._stopping.is_set():
            mid = f"steady{i}"
            self.produced[mid] = time.monotonic()
            await produce(bootstrap, topic, [post(mid, f"gm {i}", [])])
            await asyncio.sleep(0.25)
            i += 1

    async def stop(self) -> None:
        """Stop producing (between two posts: a producer cut off mid-start is never closed)."""
        self._stopping.set()
        await self._task

    def check(self, delivered: list[tuple[float, dict[str, Any]]], max_delay_s: float) -> str:
        """Assert every post produced 5 s ago or more arrived within ``max_delay_s``."""
        arrived = {
            v["mid"]: at for at, v in delivered if str(v.get("mid", "")).startswith("steady")
        }
        due = {mid: at for mid, at in self.produced.items() if at < time.monotonic() - 5}
        missing = sorted(set(due) - set(arrived))
        assert not missing, f"{len(missing)} of {len(due)} ordinary posts not delivered"
        delays = sorted(arrived[mid] - due[mid] for mid in due)
        assert delays[-1] < max_delay_s, f"an ordinary delivery took {delays[-1]:.1f} s"
        p50, top = delays[len(delays) // 2], delays[-1]
        return f"{len(due)} ordinary posts, delay p50 {p50:.2f} s, max {top:.2f} s"


async def _keys(base: str) -> tuple[str, str]:
    """Create a key receiving what says "gm" and one receiving everything; return channels."""
    channels = []
    async with aiohttp.ClientSession(base_url=base) as http:
        for label, keywords in (("steady", ["gm"]), ("all", [])):
            headers = {"x-admin-key": ADMIN}
            async with http.post("/admin/keys", json={"label": label}, headers=headers) as r:
                assert r.status == 201, await r.text()
                created = (await r.json())["data"]
            if keywords:
                body, auth = {"keywords": keywords}, {"x-api-key": created["api_key"]}
                async with http.post("/keywords", json=body, headers=auth) as r:
                    assert r.status == 200, await r.text()
            channels.append(created["channels"][0])
    return channels[0], channels[1]


@dataclass
class Watch:
    """A worker under attack: its keys' channels, what came out, and the ordinary flow."""

    worker: Worker
    steady: str  # the channel of the key whose ordinary posts keep flowing
    everything: str  # the channel of a key that receives every post
    seen: Seen
    flow: Flow


@asynccontextmanager
async def _watched(bootstrap: str, settings: Settings, start_worker: Any) -> AsyncIterator[Watch]:
    """Run a worker with its two keys, another key's ordinary posts flowing, and read what
    comes out; on leaving, check every ordinary post arrived within 8 s."""
    worker = start_worker(settings)
    steady, everything = await _keys(f"http://127.0.0.1:{settings.web_port}")
    seen, stop = Seen(), asyncio.Event()
    topics = [settings.ocr_result_topic, settings.ocr_error_topic, settings.dead_letter_topic]
    collector = asyncio.ensure_future(collect(bootstrap, [*topics, steady, everything], seen, stop))
    flow = Flow(bootstrap, settings.posts_topic)
    try:
        await asyncio.sleep(2)
        yield Watch(worker, steady, everything, seen, flow)
        await asyncio.sleep(3)
        print("\n" + flow.check(seen.records[steady], max_delay_s=8.0))
    finally:
        await flow.stop()
        stop.set()
        await collector


def _stop_in_time(worker: Worker) -> float:
    """SIGTERM the worker; assert it exits cleanly within its stop timeout and a margin."""
    assert worker.process is not None
    process = worker.process
    started = time.monotonic()
    worker.stop(timeout_s=60)
    took = time.monotonic() - started
    assert process.returncode == 0 and took < STOP_TIMEOUT_S + 8, (took, worker.log()[-3000:])
    return took


def _posts_of(seen: Seen, topic: str, mid: str) -> list[dict[str, Any]]:
    return [v for v in seen.values(topic) if v.get("mid") == mid]


def _letters_of(seen: Seen, topic: str, mid: str) -> list[dict[str, Any]]:
    return [v for v in seen.values(topic) if f'"mid": "{mid}"' in v["record"] or mid in v["record"]]


async def test_records_past_the_old_limits_no_longer_jam_the_stream(
    kafka: LocalKafka, attack_host: str, start_worker: Any
) -> None:
    settings = unique_settings(
        kafka, admin_key=ADMIN, ocr_concurrency=32, stop_timeout_s=STOP_TIMEOUT_S
    )
    async with _watched(kafka.bootstrap, settings, start_worker) as watch:
        seen, everything = watch.seen, watch.everything
        qr_urls = [f"{attack_host}/qr/{n}.png" for n in range(16)]
        await produce(
            kafka.bootstrap,
            settings.posts_topic,
            [
                post("poison-text", control_text(), []),
                post("poison-qr-1", "gm, look", qr_urls[:8]),
                post("poison-qr-2", "gm, look", qr_urls[8:]),
            ],
        )

        def qr_results() -> list[dict[str, Any]]:
            return [
                v for v in seen.values(settings.ocr_result_topic)
                if v["ref"]["mid"].startswith("poison-qr")
            ]  # fmt: skip

        await wait_until(lambda: len(qr_results()) == 16, 120, "an ocr_result per QR grid copy")
        await wait_until(
            lambda: len(_posts_of(seen, everything, "poison-text")) == 1,
            60,
            "the post of 99,993 control characters delivered",
        )
    # The post is delivered as it was, once (its candidate is 632 KB now, not 1.2 MB).
    [delivered] = _posts_of(seen, everything, "poison-text")
    assert delivered["text"] == control_text()
    for result in qr_results():
        assert result["truncated"] == ["qr"] and len(result["qr"]) == 16
        assert all(len(code["text"]) == 1024 for code in result["qr"])
    assert not seen.values(settings.ocr_error_topic)
    assert not seen.values(settings.dead_letter_topic)
    print(f"stopped {_stop_in_time(watch.worker):.1f} s after SIGTERM")


async def _create_topic(bootstrap: str, name: str, configs: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1, topic_configs=configs)])
    finally:
        await admin.close()


async def _record_sizes(bootstrap: str, topic: str) -> list[int]:
    """Return the size of every record value on ``topic``."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    sizes: list[int] = []
    try:
        while batch := await consumer.getmany(timeout_ms=2000):
            sizes += [len(m.value or b"") for ms in batch.values() for m in ms]
    finally:
        await stop_consumer(consumer)
    return sizes


def _post_just_under(limit: int, image_url: str) -> bytes:
    """Return a post record just under ``limit`` bytes whose candidate and image job are over it.

    Control characters in its text, a long id, link and image URL: the records made from it
    carry all of that and a little more (the event id, the job's reference to the post).
    """
    long_url = f"{image_url}?pad={'p' * 1900}"
    fields = {"mid": "poison-text" + "0" * 245, "link": "https://x.com/" + "l" * 2000}

    def record(chars: int) -> bytes:
        body = json.loads(post("m", control_text(chars), [long_url]))
        return json.dumps(body | fields).encode()

    chars = next(n for n in range(limit // 6, 0, -10) if len(record(n)) < limit - 400)
    return record(chars)


async def test_under_a_64_kb_broker_bundles_split_and_what_cannot_fit_has_its_outcome(
    small_kafka: LocalKafka, attack_host: str, start_worker: Any
) -> None:
    settings = unique_settings(
        small_kafka, admin_key=ADMIN, ocr_concurrency=32, stop_timeout_s=STOP_TIMEOUT_S
    )
    # A topic may take less than its broker: this one's ocr_results must stay under 8 KB.
    await _create_topic(
        small_kafka.bootstrap, settings.ocr_result_topic, {"max.message.bytes": "8192"}
    )
    burst = [post(f"burst{i}", f"burst {i} " + "x" * 300, []) for i in range(3000)]
    async with _watched(small_kafka.bootstrap, settings, start_worker) as watch:
        seen, everything = watch.seen, watch.everything
        await produce(
            small_kafka.bootstrap,
            settings.posts_topic,
            [
                _post_just_under(SMALL_LIMIT, f"{attack_host}/img/s30_promo.png"),
                post("poison-qr", "look", [f"{attack_host}/qr/0.png"]),
                post("large-but-fits", "y" * 40_000, []),
                *burst,
            ],
        )
        burst_mids = {f"burst{i}" for i in range(3000)}

        def delivered() -> set[str]:
            return {v["mid"] for v in seen.values(everything) if "mid" in v}

        await wait_until(
            lambda: burst_mids <= delivered(), 120, "every post of the burst delivered"
        )
        await wait_until(
            lambda: any(
                e["ref"]["mid"] == "poison-qr" for e in seen.values(settings.ocr_error_topic)
            ),
            120,
            "the QR grid's ocr_error",
        )
        await wait_until(
            lambda: bool(_letters_of(seen, settings.dead_letter_topic, "poison-text")),
            60,
            "the dead letter of the post over the limit",
        )
    assert "large-but-fits" in delivered()
    # The post over the limit: one dead letter naming each record that could not be sent.
    [letter] = _letters_of(seen, settings.dead_letter_topic, "poison-text")
    assert letter["stage"] == "posts" and letter["record_bytes"] > SMALL_LIMIT - 1000
    assert "candidates" in letter["reason"] and "images" in letter["reason"]
    assert "over the" in letter["reason"] and len(letter["reason"]) <= 1000
    assert not [v for v in seen.values(everything) if str(v.get("mid")).startswith("poison-t")]
    # The QR grid was read, and its ocr_result (17 KB) is over its topic's 8 KB: an ocr_error.
    [error] = [e for e in seen.values(settings.ocr_error_topic) if e["ref"]["mid"] == "poison-qr"]
    assert error["error"] == "result_too_large" and "8,192-byte limit" in error["reason"]
    # Bundles split within the broker's limit, and fill it.
    sizes = await _record_sizes(small_kafka.bootstrap, settings.candidates_topic)
    assert max(sizes) <= SMALL_LIMIT and max(sizes) > SMALL_LIMIT // 2, max(sizes)
    print(f"stopped {_stop_in_time(watch.worker):.1f} s after SIGTERM")


async def test_sigterm_stops_a_worker_whose_record_can_never_finish(
    kafka: LocalKafka, start_worker: Any
) -> None:
    image = (DATA / "s30_promo.png").read_bytes()
    held = asyncio.Event()
    held.set()

    async def image_or_drip(request: web.Request) -> web.StreamResponse:
        """While held, a byte every half second for ever (its download never ends)."""
        if not held.is_set():
            return web.Response(body=image, content_type="image/png")
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)
        while True:
            await response.write(image[:1])
            await asyncio.sleep(0.5)

    app = web.Application()
    app.router.add_get("/held.png", image_or_drip)
    runner, base = await serve_on_loopback(app, shutdown_timeout_s=1.0)
    # Downloads may take an hour: the record in flight would hold Faust's stop as long.
    settings = unique_settings(
        kafka, stop_timeout_s=STOP_TIMEOUT_S, fetch_total_timeout_s=3600, ocr_concurrency=1
    )
    try:
        worker = start_worker(settings)
        await produce(
            kafka.bootstrap, settings.posts_topic, [post("held", "gm", [f"{base}/held.png"])]
        )
        await wait_until(lambda: "held.png" in worker.status(), 60, "the download under way")
        print(f"\nstopped {_stop_in_time(worker):.1f} s after SIGTERM with a record held")
        assert "gave up after" in worker.log()
        # The image job was never acknowledged: the next worker reads it again.
        held.clear()
        start_worker(settings)
        seen, stop = Seen(), asyncio.Event()
        topic = settings.ocr_result_topic
        collector = asyncio.ensure_future(collect(kafka.bootstrap, [topic], seen, stop))
        try:
            await wait_until(lambda: bool(seen.values(topic)), 90, "the held post's image read")
        finally:
            stop.set()
            await collector
        assert [r["ref"]["mid"] for r in seen.values(topic)] == ["held"]
    finally:
        await runner.cleanup()
