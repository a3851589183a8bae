"""Webhook deliveries against a real local HTTP receiver that fails, stalls and recovers.

Real worker, real broker; the receiver is an aiohttp server on loopback (allowed by the test
settings) whose endpoints misbehave on purpose.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any

import aiohttp
import pytest

from app.dispatch.signing import SIGNATURE_HEADER, verify
from app.kafka.local import LocalKafka
from harness.records import consume, post, produce
from harness.standins import Receiver
from harness.workers import unique_settings
from models.delivery_jobs import endpoint_id
from tests.support import admin_request, wait_for

pytestmark = pytest.mark.integration

ADMIN = "test-admin-secret"
POSTS = 12


async def _endpoint_order(bootstrap: str, topic: str, jobs: int) -> dict[str, list[str]]:
    """Return, per endpoint id, the event ids of its jobs in the webhooks topic's order."""
    order: dict[str, list[str]] = defaultdict(list)
    for job in await consume(bootstrap, topic, count=jobs, settle_s=1.0):
        order[endpoint_id(job["key_id"], job["url"])].append(job["event_id"])
    return order


async def test_webhooks_are_signed_retried_ordered_and_dead_lettered(
    kafka: LocalKafka, start_worker: Any, receiver: Receiver
) -> None:
    settings = unique_settings(
        kafka,
        admin_key=ADMIN,
        webhook_timeout_s=1.0,
        webhook_max_attempts=8,
        webhook_backoff_base_s=0.2,
        webhook_backoff_max_s=1.0,
    )
    worker = start_worker(settings)
    base = f"http://127.0.0.1:{settings.web_port}"
    async with aiohttp.ClientSession(base_url=base) as http:
        key = await admin_request(http, ADMIN, "POST", "/admin/keys", label="hooks")
        urls = [f"{receiver.base}/{name}" for name in ("ok", "flaky", "stall", "teapot")]
        hooks = await admin_request(
            http, ADMIN, "PUT", f"/admin/keys/{key['key_id']}/webhooks", urls=urls
        )
        secret = hooks["webhook_secret"]
        assert hooks["webhooks"] == urls
        # A second key, with a keyword three posts match, whose only endpoint always fails.
        picky = await admin_request(http, ADMIN, "POST", "/admin/keys", label="picky")
        async with http.post(
            "/keywords", json={"keywords": ["Post 1 "]}, headers={"x-api-key": picky["api_key"]}
        ) as response:
            assert response.status == 200, await response.text()
        gone = await admin_request(
            http,
            ADMIN,
            "PUT",
            f"/admin/keys/{picky['key_id']}/webhooks",
            urls=[f"{receiver.base}/gone"],
        )
        assert gone["webhook_secret"] != secret  # a secret per key
        listed = await admin_request(http, ADMIN, "GET", "/admin/keys")
        assert "webhook_secret" not in json.dumps(listed)  # shown once, never listed

    texts = [f"post {n} about nothing" for n in range(POSTS)]
    started = time.monotonic()
    await produce(
        kafka.bootstrap, settings.posts_topic, [post(f"w{n}", t, []) for n, t in enumerate(texts)]
    )

    # The healthy endpoints get every event although "stall" holds its own lane meanwhile.
    async def healthy_done() -> bool:
        return len(receiver.accepted["ok"]) >= POSTS and len(receiver.accepted["flaky"]) >= POSTS

    await wait_for(healthy_done, timeout_s=60)
    healthy_s = time.monotonic() - started
    assert receiver.accepted["stall"] == [], "the stalled endpoint answered while stalled?"
    receiver.stalled = False

    async def stalled_done() -> bool:
        return len(receiver.accepted["stall"]) >= POSTS

    await wait_for(stalled_done, timeout_s=60)

    letters = await consume(kafka.bootstrap, settings.dead_letter_topic, count=POSTS + 3)
    by_url: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for letter in letters:
        by_url[letter["webhook_url"]].append(letter)

    # Signed with the key's secret, one delivery id per event and endpoint, the event as body.
    for name in ("ok", "flaky", "stall"):
        deliveries = receiver.accepted[name]
        assert len({d[0] for d in deliveries}) == POSTS, name
        for _, headers, body, _ in deliveries:
            assert verify(secret, headers[SIGNATURE_HEADER], body), name
            event = json.loads(body)
            assert event["source"] == "x" and event["text"] in texts
            assert "keyword_matches" not in event  # the key has no keywords

    # Each endpoint got its deliveries in the webhooks topic's order, retries included.
    order = await _endpoint_order(kafka.bootstrap, settings.webhooks_topic, jobs=4 * POSTS + 3)
    by_delivery = {}
    for name in ("ok", "flaky", "stall"):
        for delivery, _, body, _ in receiver.accepted[name]:
            by_delivery[delivery] = f"post:x:{json.loads(body)['mid']}"
    for name in ("ok", "flaky", "stall"):
        received = [by_delivery[d[0]] for d in receiver.accepted[name]]
        assert received == order[endpoint_id(key["key_id"], f"{receiver.base}/{name}")]

    # "gone" (always 500) was tried the full number of times, "teapot" (400) once: both dead.
    gone_letters = by_url[f"{receiver.base}/gone"]
    assert sorted(json.loads(g["record"])["event"]["mid"] for g in gone_letters) == [
        "w1",
        "w10",
        "w11",
    ]
    assert all(
        json.loads(g["record"])["event"]["keyword_matches"] == ["post 1"] for g in gone_letters
    )
    assert {letter["attempts"] for letter in gone_letters} == {8}
    assert len(by_url[f"{receiver.base}/teapot"]) == POSTS
    assert {letter["attempts"] for letter in by_url[f"{receiver.base}/teapot"]} == {1}
    assert receiver.attempts["teapot"] == POSTS
    assert receiver.attempts["flaky"] == 2 * POSTS
    assert all(letter["stage"] == "webhook" for letter in letters)
    assert secret not in json.dumps(letters) and secret not in worker.log()

    print(
        f"\nwebhooks: {POSTS} events to the healthy endpoints in {healthy_s:.1f} s while one "
        f"endpoint stalled; {len(letters)} dead letters"
    )


async def test_no_webhook_delivery_is_lost_when_the_worker_is_killed(
    kafka: LocalKafka, start_worker: Any, receiver: Receiver
) -> None:
    settings = unique_settings(
        kafka, admin_key=ADMIN, webhook_backoff_base_s=0.2, session_timeout_s=10
    )
    worker = start_worker(settings)
    base = f"http://127.0.0.1:{settings.web_port}"
    async with aiohttp.ClientSession(base_url=base) as http:
        key = await admin_request(http, ADMIN, "POST", "/admin/keys", label="crash")
        # "slow" answers after 20 ms, so the kill lands while deliveries are under way.
        url = f"{receiver.base}/slow"
        await admin_request(http, ADMIN, "PUT", f"/admin/keys/{key['key_id']}/webhooks", urls=[url])
    count = 200
    await produce(
        kafka.bootstrap, settings.posts_topic, [post(f"k{n}", "x", []) for n in range(count)]
    )

    async def some_delivered() -> bool:
        return len(receiver.accepted["slow"]) >= count // 4

    await wait_for(some_delivered, timeout_s=60)
    worker.kill()
    at_kill = len(receiver.accepted["slow"])
    start_worker(settings)

    async def all_delivered() -> bool:
        return len({d[0] for d in receiver.accepted["slow"]}) >= count

    await wait_for(all_delivered, timeout_s=90)
    deliveries = receiver.accepted["slow"]
    repeats = len(deliveries) - count
    print(f"\nwebhooks across kill -9: {count} delivered, {repeats} repeats (killed at {at_kill})")
    assert at_kill < count, "all delivered before the kill: the test proved nothing"


async def test_keys_whose_webhooks_hang_delay_only_themselves(
    kafka: LocalKafka, start_worker: Any, receiver: Receiver
) -> None:
    # Eight send slots; two keys with six webhooks each that never answer in time.
    settings = unique_settings(kafka, admin_key=ADMIN, webhook_timeout_s=8.0, webhook_concurrency=8)
    worker = start_worker(settings)
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{settings.web_port}") as http:
        for attacker in range(2):
            key = await admin_request(http, ADMIN, "POST", "/admin/keys", label=f"bad{attacker}")
            urls = [f"{receiver.base}/stall?n={attacker}-{n}" for n in range(6)]
            await admin_request(
                http, ADMIN, "PUT", f"/admin/keys/{key['key_id']}/webhooks", urls=urls
            )
        key = await admin_request(http, ADMIN, "POST", "/admin/keys", label="healthy")
        await admin_request(
            http,
            ADMIN,
            "PUT",
            f"/admin/keys/{key['key_id']}/webhooks",
            urls=[f"{receiver.base}/ok"],
        )
    await asyncio.sleep(1)  # every replica has the keys
    produced: list[float] = []
    for n in range(6):
        produced.append(time.monotonic())
        await produce(kafka.bootstrap, settings.posts_topic, [post(f"h{n}", f"gm {n}", [])])
        await asyncio.sleep(0.5)

    async def healthy_done() -> bool:
        return len(receiver.accepted["ok"]) >= 6

    await wait_for(healthy_done, timeout_s=60)
    delays = [
        at - sent for (_, _, _, at), sent in zip(receiver.accepted["ok"], produced, strict=False)
    ]
    # With one pool, the twelve hanging sends held all eight slots for their 8 s timeout.
    assert max(delays) < 3.0, delays
    status = json.loads(worker.status())["webhooks"]["slots"]
    assert status["share"] <= 8
