"""The pipeline on a broker that wants credentials: SASL_SSL, mutual TLS, and only the ACLs.

The broker is the real one, secured the way ``ocrstream kafka --secure`` secures it: TLS with a
throwaway CA, SCRAM users, the StandardAuthorizer with nothing allowed by default. The worker
runs as a principal holding exactly the ACLs of app/kafka/acls.py (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from app.kafka.access import check_access, check_credentials, topic_errors
from app.kafka.acls import worker_acls
from app.kafka.admin import ensure_topics
from app.kafka.consumers import stop_consumer
from app.kafka.local import LocalKafka
from app.kafka.secure_local import ADMIN_USER, WORKER_USER, SecureMaterial, secure_material
from app.kafka.security import connection
from app.settings import Settings
from harness.records import post
from harness.workers import operator_url, run_cli, unique_settings
from tests.support import admin_request

pytestmark = pytest.mark.integration

ADMIN = "secure-admin"
UNKNOWN_TOPIC_OR_PARTITION = 3


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A real broker that takes only SASL_SSL or a client certificate, and checks ACLs."""
    directory = tmp_path_factory.mktemp("secure-kafka")
    broker = LocalKafka(directory / "data", secure=secure_material(directory / "tls"))
    broker.start()
    yield broker
    broker.stop()


def _material(broker: LocalKafka) -> SecureMaterial:
    assert broker.secure is not None
    return broker.secure


def _as_worker(broker: LocalKafka, how: str = "SCRAM-SHA-512", **overrides: Any) -> Settings:
    """Settings of a worker that connects as the least-privileged user.

    ``how``: a SASL mechanism (over SASL_SSL), or "mtls" (TLS with the worker's certificate,
    whose CN is the same principal).
    """
    material = _material(broker)
    values: dict[str, Any] = {"admin_key": ADMIN, "kafka_ssl_ca_location": str(material.ca)}
    if how == "mtls":
        values |= {
            "broker": broker.tls_bootstrap,
            "kafka_security_protocol": "SSL",
            "kafka_ssl_certificate_location": str(material.client_certificate),
            "kafka_ssl_key_location": str(material.client_key),
        }
    else:
        values |= {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": how,
            "kafka_sasl_username": WORKER_USER,
            "kafka_sasl_password_file": str(material.password_file(WORKER_USER)),
        }
    return unique_settings(broker, **(values | overrides))


def _as_admin(settings: Settings, broker: LocalKafka) -> Settings:
    password = SecretStr(_material(broker).passwords[ADMIN_USER])
    return settings.model_copy(
        update={
            "broker": broker.bootstrap,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": ADMIN_USER,
            "kafka_sasl_password": password,
            "kafka_ssl_certificate_location": "",
            "kafka_ssl_key_location": "",
        }
    )


def _grant(broker: LocalKafka, settings: Settings) -> None:
    broker.grant_acls(f"User:{WORKER_USER}", worker_acls(settings))


async def _read(settings: Settings, topic: str, count: int, timeout_s: float = 90) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, **connection(settings), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[Any] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(found) < count:
                batch = await consumer.getmany(timeout_ms=500)
                found += [json.loads(m.value) for ms in batch.values() for m in ms]
    finally:
        await stop_consumer(consumer)
    return found


def _worker_refused(settings: Settings) -> subprocess.CompletedProcess[str]:
    return run_cli(settings, "worker")


@pytest.mark.parametrize("how", ["SCRAM-SHA-512", "mtls"])
async def test_an_image_post_reaches_a_keys_channel_on_a_secured_broker_with_only_the_acls(
    secure_kafka: LocalKafka, start_worker: Any, image_host: str, how: str
) -> None:
    settings = _as_worker(secure_kafka, how)
    await asyncio.to_thread(_grant, secure_kafka, settings)
    worker = start_worker(settings)
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{settings.web_port}") as http:
        key = await admin_request(http, ADMIN, "POST", "/admin/keys", label="secure")
    # The post is produced by someone else with their own rights: here the admin.
    admin = _as_admin(settings, secure_kafka)
    producer = AIOKafkaProducer(**connection(admin), acks="all")
    await producer.start()
    try:
        record = post("sec1", "gm", [f"{image_host}/s10_sol.jpg"])
        await producer.send_and_wait(settings.posts_topic, record)
    finally:
        await producer.stop()
    channel = settings.channel_topic(key["key_id"])
    events = await _read(admin, channel, count=2)
    # The worker created its topics as it needs them (not the broker, with its defaults).
    admin_client = AIOKafkaAdminClient(**connection(admin))
    await admin_client.start()
    try:
        posts = await admin_client.describe_topics([settings.posts_topic])
    finally:
        await admin_client.close()
    assert len(posts[0]["partitions"]) == settings.topic_partitions
    result = next(e for e in events if e["source"] == "ocr_result")
    # Through the address book (its topic and tables, with the worker's rights only): the
    # first sighting of that address in this app's book.
    assert result["buy_ca"] == [
        {
            "network": "solana",
            "address": "DKwfFc2KA3i22DmxzLQzqi9weodLJXDxCtDpYaS9QJqc",
            "first_seen": True,
        }
    ]
    assert result["first_seen"] is True
    log = worker.log()
    assert "AuthorizationFailed" not in log and "TOPIC_AUTHORIZATION" not in log, log[-3000:]
    password = _material(secure_kafka).passwords[WORKER_USER]
    assert password not in log
    for page in ("/status/", "/metrics"):
        async with aiohttp.ClientSession() as http, http.get(operator_url(settings) + page) as r:
            assert r.status == 200 and password not in await r.text()
    if how == "mtls":
        return
    # The command line connects the same way, as the same user and its ACLs.
    listed = await asyncio.to_thread(run_cli, settings, "keys", "list")
    assert listed.returncode == 0 and key["key_id"] in listed.stdout, listed.stderr[-2000:]
    posted = await asyncio.to_thread(run_cli, settings, "post", "--text", "gm from the CLI")
    assert posted.returncode == 0, posted.stderr[-2000:]
    tailed = await asyncio.to_thread(
        run_cli, settings, "tail", settings.ocr_result_topic, "--last", "1", "--timeout", "20"
    )
    assert (
        tailed.returncode == 0 and "DKwfFc2KA3i22DmxzLQzqi9weodLJXDxCtDpYaS9QJqc" in tailed.stdout
    )


async def test_a_wrong_password_or_a_missing_acl_stops_the_worker_with_a_sentence(
    secure_kafka: LocalKafka, tmp_path: Path
) -> None:
    # Every mechanism the broker offers works with the right password.
    for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        await check_credentials(_as_worker(secure_kafka, mechanism))
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password")
    refused = await asyncio.to_thread(
        _worker_refused, _as_worker(secure_kafka, kafka_sasl_password_file=str(wrong))
    )
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "refused the credentials of OCRSTREAM_KAFKA_SASL_USERNAME=ocrstream" in refused.stderr
    assert "Traceback" not in refused.stderr and "not-the-password" not in refused.stderr
    assert refused.stderr.count("\n") < 15, refused.stderr  # no retry storm
    untrusted = await asyncio.to_thread(
        _worker_refused, _as_worker(secure_kafka, kafka_ssl_ca_location="")
    )
    assert untrusted.returncode == 2 and "OCRSTREAM_KAFKA_SSL_CA_LOCATION" in untrusted.stderr

    # Every ACL but the group's: the worker names the group and what to grant.
    settings = _as_worker(secure_kafka)
    no_group = [acl for acl in worker_acls(settings) if acl.resource != "group"]
    await asyncio.to_thread(secure_kafka.grant_acls, f"User:{WORKER_USER}", no_group)
    refused = await asyncio.to_thread(_worker_refused, settings)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert f"may not join the consumer group {settings.app_id}: grant it Read" in refused.stderr
    # No ACL at all (another app id): the topics are named first.
    bare = _as_worker(secure_kafka)
    refused = await asyncio.to_thread(_worker_refused, bare)
    assert refused.returncode == 2 and "may not use the topic(s)" in refused.stderr
    assert bare.posts_topic in refused.stderr and "Traceback" not in refused.stderr


async def test_the_access_check_creates_no_topic(kafka: LocalKafka) -> None:
    # Before: it described the pipeline's topics with a metadata request that let the broker
    # create them with its defaults (one partition; a changelog without compaction), so the
    # worker then found them "existing" and never created them as it needs them.
    settings = unique_settings(kafka, topic_partitions=3)
    await check_access(settings)
    errors = await topic_errors(settings, list(settings.pipeline_topics()))
    assert set(errors.values()) == {UNKNOWN_TOPIC_OR_PARTITION}, errors
    await ensure_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([settings.posts_topic])
    finally:
        await admin.close()
    assert len(described[0]["partitions"]) == 3
