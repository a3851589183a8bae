"""The address book on the real broker: first sightings and posts per window survive takeovers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from app.kafka.local import LocalKafka
from app.keys.admin import admin_over_kafka
from harness.records import consume, post, produce
from harness.workers import Worker, on_other_ports, unique_settings

pytestmark = pytest.mark.integration

PEPE = "0x6982508145454Ce325dDbE47a25d4ec3d2311933"
BONK = "DKwfFc2KA3i22DmxzLQzqi9weodLJXDxCtDpYaS9QJqc"  # printed in tests/data/s10_sol.jpg


async def _get(worker: Worker, key: str, path: str) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{worker.settings.web_port}{path}"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"x-api-key": key}) as response:
            return response.status, await response.json()


async def _until(worker: Worker, key: str, path: str, check: Any, timeout_s: float = 90) -> Any:
    """Ask ``worker`` until its answer passes ``check``; return that answer's data."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        status, body = await _get(worker, key, path)
        last = (status, body)
        if status == 200 and check(body["data"]):
            return body["data"]
        await asyncio.sleep(0.5)
    raise AssertionError(f"{path} never passed: last answer {last}")


def _posts_of(data: dict[str, Any]) -> int:
    return int(data["posts_24h"])


async def test_first_sightings_and_distinct_posts_per_window_survive_two_takeovers(
    kafka: LocalKafka, image_host: str, start_worker: Any
) -> None:
    settings = unique_settings(kafka, session_timeout_s=6)
    first = start_worker(settings)
    second = start_worker(on_other_ports(settings))
    created = await admin_over_kafka(settings).create("book")
    key = created.api_key
    assert key is not None

    # Three posts name PEPE in their text; the third twice, and with an image that shows BONK.
    posts = [
        post("a1", f"new CA {PEPE}", []),
        post("a2", f"{PEPE} again", []),
        post("a3", f"{PEPE} {PEPE.lower()} and the chart", [f"{image_host}/s10_sol.jpg"]),
    ]
    # a1 first, alone: posts on two partitions reach the book in either order, and one read
    # before an earlier one is marked first as it passes (docs/records.md says so).
    await produce(kafka.bootstrap, settings.posts_topic, posts[:1])
    await _until(first, key, f"/addresses/evm/{PEPE}", lambda d: _posts_of(d) == 1)
    await produce(kafka.bootstrap, settings.posts_topic, posts[1:])
    # Either worker answers: the one that does not hold the book asks the one that does.
    for worker in (first, second):
        data = await _until(worker, key, f"/addresses/evm/{PEPE}", lambda d: _posts_of(d) == 3)
        assert data["first_seen"]["ref"]["mid"] == "a1"
    await _until(second, key, f"/addresses/solana/{BONK}", lambda d: _posts_of(d) == 1)

    # At least once: the same posts again (a producer's retry, a replay) count nothing more.
    await produce(kafka.bootstrap, settings.posts_topic, posts)
    first.kill()
    await asyncio.sleep(2)
    await produce(kafka.bootstrap, settings.posts_topic, [post("a4", f"buy {PEPE}", [])])
    data = await _until(second, key, f"/addresses/evm/{PEPE}", lambda d: _posts_of(d) == 4)
    assert data["first_seen"]["ref"]["mid"] == "a1"

    # A new worker joins and the survivor is killed: the newcomer recovers the book.
    third = start_worker(on_other_ports(settings))
    await asyncio.sleep(2)
    second.kill()
    await produce(kafka.bootstrap, settings.posts_topic, [*posts, post("a5", PEPE, [])])
    data = await _until(third, key, f"/addresses/evm/{PEPE}", lambda d: _posts_of(d) == 5)
    assert data["first_seen"]["ref"]["mid"] == "a1" and len(data["windows"]) >= 1
    trending = await _until(third, key, "/trending?window=1h", lambda d: len(d["addresses"]) == 2)
    assert [(a["network"], a["address"], a["posts"]) for a in trending["addresses"]] == [
        ("evm", PEPE, 5),
        ("solana", BONK, 1),
    ]

    # Deliveries say which event was an address's first sighting: a1 (PEPE) and a3's image
    # (BONK), and only those, however often they were delivered again.
    assert created.record is not None
    channel = settings.channel_topic(created.record.key_id)
    # a1-a3 three times, a4, a5, a3's image at least once: 12 records at least.
    delivered = await consume(kafka.bootstrap, channel, 12, settle_s=2)
    firsts = {
        (d["source"], d.get("mid") or d["ref"]["mid"])
        for d in delivered
        if d.get("first_seen") is True
    }
    assert firsts == {("x", "a1"), ("ocr_result", "a3")}, delivered
    # Every repeat of a1 says so too, though the repeats skip the book (its address known).
    assert all(d.get("first_seen") is True for d in delivered if d.get("mid") == "a1")
    status = json.loads(await asyncio.to_thread(third.status))
    known = status["address_book"]["known_here"]
    # The newcomer's copy knew PEPE (and BONK) before it took the posts over: a1-a3 and a5
    # went straight to the filter, the book only counting them.
    assert known["ready"] is True and known["addresses"] == 2
    assert known["skipped_book"] >= 4, known
    for d in delivered:
        if d["source"] == "ocr_result":
            assert d["buy_ca"] == [{"network": "solana", "address": BONK, "first_seen": True}]
        else:
            assert "buy_ca" not in d
    assert {d["mid"] for d in delivered if d["source"] == "x"} == {f"a{i}" for i in range(1, 6)}


async def test_the_book_answers_clear_errors(kafka: LocalKafka, start_worker: Any) -> None:
    settings = unique_settings(kafka)
    worker = start_worker(settings)
    created = await admin_over_kafka(settings).create("book errors")
    key = created.api_key
    assert key is not None
    await produce(kafka.bootstrap, settings.posts_topic, [post("b1", f"CA {PEPE}", [])])
    await _until(worker, key, f"/addresses/evm/{PEPE}", lambda d: _posts_of(d) == 1)
    status, body = await _get(worker, key, "/addresses/evm/0x" + "0" * 40)
    assert status == 404 and "not seen" in body["error"]
    status, body = await _get(worker, key, f"/addresses/dogecoin/{PEPE}")
    assert status == 404 and "no network" in body["error"]
    status, body = await _get(worker, key, "/trending?window=2d")
    assert status == 400 and "window must be one of" in body["error"]
    status, body = await _get(worker, key, "/trending?limit=1000")
    assert status == 400 and "limit" in body["error"]
    status, body = await _get(worker, "osk_aaaaaaaaaaaa_" + "b" * 32, "/trending")
    assert status == 401
