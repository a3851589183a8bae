"""What an agent's batch of records produces, sent as one batch per topic partition.

Why not Faust's ``topic.send`` per record: in the profile of a worker moving text posts, Faust's
send wrapper and a future per record took 39% of the time; one aiokafka record batch per topic
partition per input batch moves the same records at a fraction of the cost.

At-least-once is kept by order, not by Faust's producer: ``send_all`` returns only once the
broker has acknowledged every record (or the record failed, and the caller dead-letters it), and
an agent acknowledges its input batch only after ``send_all`` returned. A crash in between
repeats the batch; nothing is committed before its outputs are durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from mode import Service

from app.settings import Settings

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


@dataclass
class Outgoing:
    """One record to produce; ``error`` says why it was not, once ``send_all`` returned."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = field(default_factory=list)
    error: str | None = None
    # Why kept: a send that failed because the cluster moved a leader (the topic exists, the
    # answer did not come in time, or Kafka called the error retriable) may succeed later; a
    # topic Kafka refuses or never creates will not.
    retriable: bool = False


class OutboxClosedError(RuntimeError):
    """The outbox stopped (the worker is shutting down): the batch must not be acknowledged."""


class Outbox(Service):
    """A producer of the worker's own that sends each agent batch's records in one go."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()
        self._closing = False

    async def on_start(self) -> None:
        """Start the producer (acks from every in-sync replica, as Faust's)."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.broker,
            acks="all",
            # Why: a retry after a lost answer (a leader killed mid-request) must not write a
            # record twice; the broker drops the repeat by its sequence number.
            enable_idempotence=True,
            # No linger: every batch is closed before it is sent (see _send), so none would wait.
            # Why: the pipeline's records are small and many; one request carries more of them.
            max_batch_size=256 * 1024,
        )
        await self._producer.start()

    async def on_stop(self) -> None:
        """Stop the producer (what it holds was already acknowledged or reported)."""
        # Why first: sends that fail from here on fail because of the shutdown, not the record.
        self._closing = True
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def send_all(self, records: Sequence[Outgoing], timeout_s: float) -> None:
        """Produce ``records``; return when the broker has each, or each failed (``error``).

        Records of one topic partition keep their order. A topic that cannot be sent to (no
        metadata within ``timeout_s``, a refused send) fails its own records only.
        """
        if not records:
            return
        producer = self._producer
        if producer is None or self._closing:
            raise OutboxClosedError("the outbox is not running (the worker is stopping?)")
        by_topic: dict[str, list[Outgoing]] = defaultdict(list)
        for record in records:
            by_topic[record.topic].append(record)
        await asyncio.gather(
            *(
                self._send_topic(producer, topic, rows, timeout_s)
                for topic, rows in by_topic.items()
            )
        )
        if self._closing and any(record.error is not None for record in records):
            # Why raise: the agents stop after the outbox (Faust's order), and a send cut by
            # the stop would otherwise be dead-lettered (or held) and its batch acknowledged:
            # seen once as a lost delivery in a rolling restart. Unacknowledged, the batch is
            # read again by the worker that takes the partition over.
            raise OutboxClosedError("the outbox stopped while the batch was being sent")

    async def send_until_done(self, records: Sequence[Outgoing], timeout_s: float) -> None:
        """Produce the pipeline's own records, trying again until the broker has every one.

        Why never give up: these records (image jobs, candidates, results) are the pipeline's
        own state; until they are durable the input batch must not be acknowledged. A broker
        that is away holds the stream here, as it would hold any producer; the worker stops
        cleanly meanwhile (cancellation), and the batch is read again after a restart.
        """
        pending = list(records)
        delay = 0.5
        while pending:
            for record in pending:
                record.error, record.retriable = None, False
            await self.send_all(pending, timeout_s)
            failed = [record for record in pending if record.error is not None]
            if failed:
                log.warning(
                    "%d record(s) not produced yet (%s); trying again in %.1f s",
                    len(failed),
                    failed[0].error,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            pending = failed

    async def _send_topic(
        self, producer: AIOKafkaProducer, topic: str, rows: list[Outgoing], timeout_s: float
    ) -> None:
        """Send one topic's records; mark each record whose send did not complete."""
        sent: list[tuple[asyncio.Future[object], list[Outgoing]]] = []
        known: list[bool] = []  # set once the topic's partitions are known
        try:
            await asyncio.wait_for(
                self._send_batches(producer, topic, rows, sent, known), timeout_s
            )
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            reason = f"not acknowledged within {timeout_s:g} s"
            # Why: a topic with partitions whose answer is late is a leader moving (or a
            # broker down); a topic whose partitions never came is one Kafka does not create.
            retriable = bool(known)
        except (KafkaError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:300]
            retriable = bool(getattr(exc, "retriable", False))
        else:
            return
        # Why per batch: records of a partition the broker did acknowledge are delivered, and
        # must not also be reported as failed.
        queued = {id(row) for _, batch_rows in sent for row in batch_rows}
        for future, batch_rows in sent:
            if not future.done() or future.cancelled() or future.exception() is not None:
                _fail(batch_rows, reason, retriable)
        _fail([row for row in rows if id(row) not in queued], reason, retriable)

    async def _send_batches(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        rows: list[Outgoing],
        sent: list[tuple[asyncio.Future[object], list[Outgoing]]],
        known: list[bool],
    ) -> None:
        partitions = sorted(await producer.partitions_for(topic))
        known.append(True)
        by_partition: dict[int, list[Outgoing]] = defaultdict(list)
        for row in rows:
            by_partition[self._partitioner(row.key, partitions, partitions)].append(row)
        for partition, partition_rows in by_partition.items():
            batch = producer.create_batch()
            in_batch: list[Outgoing] = []
            for row in partition_rows:
                if not _append(batch, row):
                    # The batch is full: send it and go on in a new one (the order is kept).
                    sent.append((await _send(producer, batch, topic, partition), in_batch))
                    batch, in_batch = producer.create_batch(), []
                    if not _append(batch, row):
                        row.error = "record larger than a produce batch"
                        continue
                in_batch.append(row)
            if in_batch:
                sent.append((await _send(producer, batch, topic, partition), in_batch))
        results = await asyncio.gather(*(future for future, _ in sent), return_exceptions=True)
        for result, (_, batch_rows) in zip(results, sent, strict=True):
            if isinstance(result, BaseException):
                retriable = isinstance(result, TimeoutError) or bool(
                    getattr(result, "retriable", False)
                )
                _fail(batch_rows, f"{type(result).__name__}: {result}"[:300], retriable)


async def _send(
    producer: AIOKafkaProducer, batch: Any, topic: str, partition: int
) -> asyncio.Future[object]:
    """Queue a full batch for sending now; return the future of the broker's answer."""
    # Why closed: aiokafka holds an open batch for the linger, waiting for more records; this
    # batch is all the agent's batch has for the partition, so it leaves at once.
    batch.close()
    future: asyncio.Future[object] = await producer.send_batch(batch, topic, partition=partition)
    return future


def _append(batch: object, row: Outgoing) -> bool:
    """Add a record to a batch; False when the batch is full."""
    appended = batch.append(  # type: ignore[attr-defined]
        key=row.key, value=row.value, timestamp=None, headers=row.headers
    )
    return appended is not None


def _fail(rows: list[Outgoing], reason: str, retriable: bool = False) -> None:
    for row in rows:
        if row.error is None:
            row.error, row.retriable = reason, retriable
