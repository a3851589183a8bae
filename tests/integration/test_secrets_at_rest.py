"""Webhook signing secrets never reach Kafka in clear, and the operator's key rotates.

A real worker on a real broker: the secrets minted for two keys (one through the API, one in a
command written the way an older version wrote it, in clear) are looked for in every topic the
worker writes, in its log, on ``/status/`` and in ``/metrics``. Then the key is rotated: the
worker with ``new,old`` still signs with the secrets sealed under the old key, and a worker
with only the new key, or none, refuses to start with a sentence.
"""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer

from app.dispatch.signing import SIGNATURE_HEADER, new_secret, verify
from app.kafka.consumers import stop_consumer
from app.kafka.local import LocalKafka
from app.keys.changelog import read_keys
from app.sealing import is_sealed, new_secret_key
from harness.records import post, produce
from harness.standins import Receiver
from harness.workers import TEST_SECRET_KEY, operator_url, run_cli, unique_settings
from models.keys import AddWebhook
from tests.support import admin_request, wait_for

pytestmark = pytest.mark.integration

ADMIN = "secrets-admin"


async def _topic_bytes(bootstrap: str, topics: list[str]) -> bytes:
    """Return every key and value of ``topics``, from the start to their end now."""
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    dump = bytearray()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                return bytes(dump)
            for message in (m for ms in batch.values() for m in ms):
                dump += (message.key or b"") + b"\n" + (message.value or b"") + b"\n"
    finally:
        await stop_consumer(consumer)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
        return text


async def _delivered(hooks: Receiver, name: str, count: int, secret: str) -> None:
    async def arrived() -> bool:
        return len(hooks.accepted[name]) >= count

    await wait_for(arrived, timeout_s=60)
    for _, headers, body, _ in hooks.accepted[name]:
        assert verify(secret, headers[SIGNATURE_HEADER], body), name


async def test_no_secret_reaches_kafka_and_a_rotated_key_still_signs(
    kafka: LocalKafka, start_worker: Any, receiver: Receiver
) -> None:
    hooks = receiver
    settings = unique_settings(kafka, admin_key=ADMIN)
    worker = start_worker(settings)
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{settings.web_port}") as http:
        minted = await admin_request(http, ADMIN, "POST", "/admin/keys", label="minted")
        set_hooks = await admin_request(
            http,
            ADMIN,
            "PUT",
            f"/admin/keys/{minted['key_id']}/webhooks",
            urls=[f"{hooks.base}/minted"],
        )
        secret = set_hooks["webhook_secret"]
        older = await admin_request(http, ADMIN, "POST", "/admin/keys", label="older")
    # A command as an older version wrote it: the secret in clear, in the control topic.
    in_clear = new_secret()
    legacy = AddWebhook(key_id=older["key_id"], url=f"{hooks.base}/older", secret=in_clear)
    await produce(
        kafka.bootstrap,
        settings.control_topic,
        [legacy.model_dump_json().encode()],
        key=older["key_id"].encode(),
    )

    async def applied() -> bool:
        record = (await read_keys(settings)).get(older["key_id"])
        return record is not None and bool(record.webhooks)

    await wait_for(applied, timeout_s=30)
    await produce(kafka.bootstrap, settings.posts_topic, [post("s1", "gm", [])])
    await _delivered(hooks, "minted", 1, secret)
    await _delivered(hooks, "older", 1, in_clear)

    # Sealed in the keys changelog, the one written in clear included; in clear nowhere else.
    records = await read_keys(settings)
    assert all(is_sealed(records[k["key_id"]].webhook_secret) for k in (minted, older))
    written = await _topic_bytes(
        kafka.bootstrap,
        [
            settings.keys_changelog_topic,
            settings.control_topic,
            settings.webhooks_topic,
            settings.dead_letter_topic,
            settings.channel_topic(minted["key_id"]),
        ],
    )
    assert secret.encode() not in written and secret.split("_", 1)[1].encode() not in written
    changelog = await _topic_bytes(kafka.bootstrap, [settings.keys_changelog_topic])
    assert in_clear.encode() not in changelog  # sealed when the record was first rewritten
    for page in (f"{operator_url(settings)}/status/", f"{operator_url(settings)}/metrics"):
        shown = await asyncio.to_thread(_get, page)
        assert secret not in shown and in_clear not in shown
    assert secret not in worker.log() and in_clear not in worker.log()
    assert TEST_SECRET_KEY not in worker.log()
    worker.stop()

    # Rotation: the new key first, the old one after it. What the old one sealed still signs.
    new_key = new_secret_key()
    rotating = settings.model_copy(update={"secret_key": f"{new_key},{TEST_SECRET_KEY}"})
    start_worker(rotating)
    await produce(kafka.bootstrap, settings.posts_topic, [post("s2", "gm again", [])])
    await _delivered(hooks, "minted", 2, secret)
    await _delivered(hooks, "older", 2, in_clear)

    # Without the old key, or without any, a worker refuses to start and says why.
    for missing, said in (
        ({"secret_key": new_key}, "does not open the webhook signing secrets of 2 key(s)"),
        ({"secret_key": None}, "OCRSTREAM_SECRET_KEY is not set"),
    ):
        refused = await asyncio.to_thread(run_cli, settings.model_copy(update=missing), "worker")
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert said in refused.stderr and "Traceback" not in refused.stderr
        assert new_key not in refused.stderr and TEST_SECRET_KEY not in refused.stderr
