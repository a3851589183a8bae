"""Topics the worker needs, created with Kafka's admin client before Faust starts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from app.kafka.security import connection
from app.settings import Settings

TOPIC_ALREADY_EXISTS = 36


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the pipeline's topics that do not exist yet; return the names created."""
    wanted = dict(settings.pipeline_topics())
    # Why not the changelog: Faust creates it itself, with the settings its table needs.
    del wanted[settings.keys_changelog_topic]
    return await create_topics(settings, wanted)


class ReplicationError(RuntimeError):
    """The settings ask for more replicas than the cluster can hold; the message says why."""


async def check_replication(settings: Settings) -> int:
    """Return the cluster's broker count; raise ReplicationError when it cannot hold the topics.

    Why before anything is created: Kafka refuses a topic whose replication factor exceeds the
    brokers, but Faust would log that and go on with some of its topics missing.
    """
    admin = AIOKafkaAdminClient(**connection(settings))
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    brokers = len(cluster["brokers"])
    if settings.topic_replicas > brokers:
        raise ReplicationError(
            f"OCRSTREAM_TOPIC_REPLICAS is {settings.topic_replicas} but the cluster at "
            f"{settings.broker} has {brokers} broker(s): set it to at most {brokers}, or add "
            "brokers"
        )
    if settings.min_insync_replicas > settings.topic_replicas:
        raise ReplicationError(
            f"OCRSTREAM_MIN_INSYNC_REPLICAS ({settings.min_insync_replicas}) is above "
            f"OCRSTREAM_TOPIC_REPLICAS ({settings.topic_replicas}): no write could succeed"
        )
    return brokers


async def create_topics(settings: Settings, wanted: dict[str, int]) -> list[str]:
    """Create those of ``wanted`` (name -> partitions) that do not exist; return them."""
    admin = AIOKafkaAdminClient(**connection(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        configs = (
            {"min.insync.replicas": str(settings.min_insync_replicas)}
            if settings.min_insync_replicas
            else {}
        )
        missing = [
            NewTopic(name, partitions, settings.topic_replicas, topic_configs=configs)
            for name, partitions in wanted.items()
            if name not in existing
        ]
        if missing:
            answer = await admin.create_topics(missing)
            _raise_refusal(answer.topic_errors)
            await _wait_for_leaders(admin, [topic.name for topic in missing])
        return [topic.name for topic in missing]
    finally:
        await admin.close()


def _raise_refusal(topic_errors: list[tuple[Any, ...]]) -> None:
    """Raise Kafka's error for the first topic it refused to create (one made meanwhile is fine).

    Why: without this a refusal (no Create ACL, a bad config) surfaced only as topics that
    never got leaders, 30 s later.
    """
    for name, code, *rest in topic_errors:
        if code not in (0, TOPIC_ALREADY_EXISTS):
            message = rest[0] if rest and rest[0] else ""
            raise for_code(code)(f"creating topic {name}: {message}".rstrip(": "))


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 30.0
) -> None:
    """Wait until every partition of the named topics has a leader (or raise TimeoutError).

    Why: a topic is created before its partitions have leaders; clients that produce to or
    fetch from it in that window depend on each client's metadata retry being right. Waiting
    here means the pipeline only ever sees fully formed topics.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        unready = [
            topic["topic"]
            for topic in described
            if topic["error_code"]
            or not topic["partitions"]
            or any(p["error_code"] or p["leader"] < 0 for p in topic["partitions"])
        ]
        if not unready and len(described) == len(names):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without leaders after {timeout_s:.0f}s: {unready}")
        await asyncio.sleep(0.1)


async def ready_partitions(admin: AIOKafkaAdminClient, topic: str) -> list[int]:
    """Return the topic's partitions if it exists and each has a leader, else an empty list."""
    described = await admin.describe_topics([topic])
    for found in described:
        partitions = found["partitions"]
        if found["error_code"] or any(p["error_code"] or p["leader"] < 0 for p in partitions):
            return []
        return sorted(p["partition"] for p in partitions)
    return []
