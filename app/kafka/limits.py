"""How large a record each topic takes, read from the broker, so nothing is sent it refuses.

A record batch larger than its topic's ``max.message.bytes`` (the broker's
``message.max.bytes`` unless the topic overrides it) is refused with MESSAGE_TOO_LARGE, and an
idempotent producer is left unable to send to that partition again (its sequence numbers have
a gap). So every record is measured against its topic's limit, and against the producer's own
request size, before it is sent; one that does not fit is that record's outcome, never a retry.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from mode import Service

from app.kafka.security import connection
from app.settings import Settings

log = logging.getLogger(__name__)

# Kafka's defaults: the broker's message.max.bytes (1 MiB plus a record batch's 12-byte log
# overhead), and a producer's max.request.size. Used until the broker has said otherwise.
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
PRODUCER_MAX_REQUEST_BYTES = 1_048_576
# Why re-read: an operator may change a topic's limit while the worker runs.
_FRESH_FOR_S = 300.0
# A record that fits its topic for certain (its bytes plus the most a batch header and the
# record's own framing add) is not measured precisely: the hot path stays a length check.
_FRAMING_BYTES = 256

Headers = list[tuple[str, bytes]]


def record_size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """Return the bytes of a record batch holding only this record (an upper bound)."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers))


def oversize(key: bytes | None, value: bytes, headers: Headers, limit: int) -> int | None:
    """Return the record's size (alone in a batch) when it is over ``limit``, else None."""
    rough = len(value) + len(key or b"") + _FRAMING_BYTES
    rough += sum(len(name) + len(data) + 8 for name, data in headers)
    if rough <= limit:
        return None
    size = record_size(key, value, headers)
    return size if size > limit else None


def too_large(size: int, limit: int, topic: str) -> str:
    """Return the reason a record of ``size`` bytes is not sent to ``topic``."""
    return f"record is {size:,} bytes, over the {limit:,}-byte limit of topic {topic}"


class TopicLimits(Service):
    """The largest record batch each topic takes (``max.message.bytes``), cached a while."""

    def __init__(self, settings: Settings, max_request_bytes: int = PRODUCER_MAX_REQUEST_BYTES):
        super().__init__()
        self._settings = settings
        self._max_request_bytes = max_request_bytes
        self._admin: AIOKafkaAdminClient | None = None
        self._default = KAFKA_DEFAULT_MAX_MESSAGE_BYTES
        self._limits: dict[str, tuple[float, int]] = {}

    async def on_start(self) -> None:
        """Open the admin client and read the broker's default record limit."""
        self._admin = AIOKafkaAdminClient(**connection(self._settings))
        await self._admin.start()
        try:
            brokers = (await self._admin.describe_cluster())["brokers"]
            found = await self._describe(ConfigResourceType.BROKER, str(brokers[0]["node_id"]))
        except (KafkaError, OSError, LookupError, TimeoutError) as exc:
            log.warning("could not read the broker's message.max.bytes (%r); assuming 1 MiB", exc)
        else:
            self._default = found.get("message.max.bytes", self._default)

    async def on_stop(self) -> None:
        """Close the admin client."""
        if self._admin is not None:
            admin, self._admin = self._admin, None
            await admin.close()

    def cached(self, topic: str) -> int | None:
        """Return ``topic``'s limit if it was read recently, without asking the broker."""
        entry = self._limits.get(topic)
        if entry is None or time.monotonic() - entry[0] > _FRESH_FOR_S:
            return None
        return entry[1]

    async def limit(self, topic: str) -> int:
        """Return the largest record batch ``topic`` takes, in bytes (the producer's bound too)."""
        known = self.cached(topic)
        if known is not None:
            return known
        found: dict[str, int] = {}
        if self._admin is not None:
            try:
                found = await self._describe(ConfigResourceType.TOPIC, topic)
            except (KafkaError, OSError, TimeoutError) as exc:
                # Why not fatal: the broker's default holds for every topic without an override.
                log.warning("could not read max.message.bytes of %s: %r", topic, exc)
        limit = min(found.get("max.message.bytes", self._default), self._max_request_bytes)
        self._limits[topic] = (time.monotonic(), limit)
        return limit

    def forget(self, topic: str) -> None:
        """Read ``topic``'s limit again next time (the broker refused a record as too large)."""
        self._limits.pop(topic, None)

    async def _describe(self, kind: ConfigResourceType, name: str) -> dict[str, int]:
        """Return the numeric record-size settings of a topic or broker."""
        assert self._admin is not None
        wanted = {"max.message.bytes": None} if kind == ConfigResourceType.TOPIC else None
        responses = await self._admin.describe_configs([ConfigResource(kind, name, wanted)])
        return sizes_in(responses)


def sizes_in(responses: list[Any]) -> dict[str, int]:
    """Return the record-size settings found in DescribeConfigs responses (none on errors)."""
    found: dict[str, int] = {}
    for response in responses:
        for resource in response.resources:
            error_code, entries = resource[0], resource[4]
            if error_code:
                continue  # e.g. a topic that does not exist yet: the broker's default holds
            for entry in entries:
                name, value = entry[0], entry[1]
                if name in ("max.message.bytes", "message.max.bytes") and value is not None:
                    found[name] = int(value)
    return found
