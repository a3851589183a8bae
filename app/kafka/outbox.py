"""What an agent's batch of records produces, sent as one batch per topic partition.

Why not Faust's ``topic.send`` per record: in the profile of a worker moving text posts, Faust's
send wrapper and a future per record took 39% of the time; one aiokafka record batch per topic
partition per input batch moves the same records at a fraction of the cost.

At-least-once is kept by order, not by Faust's producer: ``send_all`` returns only once the
broker has acknowledged every record (or the record failed, and the caller dead-letters it), and
an agent acknowledges its input batch only after ``send_all`` returned. A crash in between
repeats the batch; nothing is committed before its outputs are durable.

Every record is measured against its topic's limit before it is sent (``app/kafka/limits.py``),
and each record batch is built no larger than that limit. A record Kafka refuses (too large,
invalid, not authorised) is ``refused``: its failure is its outcome, never retried. A producer
left unable to send (an idempotent producer's sequence broken, its sender task dead) is
replaced, and what failed on it is sent again on the new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    RecordListTooLargeError,
    UnknownProducerId,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from mode import Service

from app.kafka.limits import TopicLimits, oversize, too_large
from app.kafka.security import connection
from app.settings import Settings

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]

# Why 256 KB: the pipeline's records are small and many; one request carries more of them. A
# topic whose limit is lower gets batches no larger than its limit.
_MAX_BATCH_BYTES = 256 * 1024
# Errors after which a producer sends nothing more: an idempotent producer whose sequence
# numbers have a gap (a batch it numbered was refused), or one the broker no longer knows.
_FATAL_TO_PRODUCER = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
    ProducerClosed,
)
# Why bounded: a broker that is gone never takes the producer's last batches.
_STOP_PRODUCER_S = 5.0


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
    # Kafka refused this record itself (too large for its topic, invalid, not authorised):
    # sending it again cannot succeed, so its failure is its outcome.
    refused: bool = False
    # Sent with a null value (``value`` is then empty): a compacted topic's deletion of ``key``.
    tombstone: bool = False


class Outbox(Service):
    """A producer of the worker's own that sends each agent batch's records in one go."""

    def __init__(self, settings: Settings, limits: TopicLimits | None = None) -> None:
        super().__init__()
        self._settings = settings
        self._own_limits = limits is None
        self.limits = limits if limits is not None else TopicLimits(settings)
        self._producer: AIOKafkaProducer | None = None
        self._replacing = asyncio.Lock()
        self._partitioner = DefaultPartitioner()
        self._closing = False
        # Producers replaced after a fatal error (for /status/ and the tests), and the old ones
        # still stopping.
        self.replaced = 0
        self._stopping: set[asyncio.Future[None]] = set()

    async def on_start(self) -> None:
        """Start the producer (acks from every in-sync replica, as Faust's)."""
        if self._own_limits:
            await self.limits.start()
        self._producer = await self._new_producer()

    async def _new_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            **connection(self._settings),
            acks="all",
            # Why: a retry after a lost answer (a leader killed mid-request) must not write a
            # record twice; the broker drops the repeat by its sequence number.
            enable_idempotence=True,
            # No linger: every batch is closed before it is sent (see _send), so none would wait.
            # The batches themselves are built by _new_batch, within each topic's limit.
        )
        await producer.start()
        return producer

    async def on_stop(self) -> None:
        """Stop the producer (what it holds was already acknowledged or reported)."""
        # Why first: sends that fail from here on fail because of the shutdown, not the record.
        self._closing = True
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await _stop_producer(producer)
        if self._own_limits:
            await self.limits.stop()

    async def _replace(self, broken: AIOKafkaProducer, why: BaseException) -> None:
        """Put a new producer in place of ``broken`` (once, however many sends saw it fail)."""
        async with self._replacing:
            if self._producer is not broken or self._closing:
                return  # replaced already, or stopping
            log.warning("outbox: the producer cannot send any more (%r); starting a new one", why)
            try:
                self._producer = await self._new_producer()
            except (KafkaError, OSError) as exc:
                # Not fatal: the failed records are sent again, and replace it then.
                log.warning("outbox: no new producer yet (%r)", exc)
                return
            self.replaced += 1
        # Why in the background, bounded: its batches failed already; nothing is waited for.
        # Kept until done, so the task is not collected half way.
        stopping = asyncio.ensure_future(_stop_producer(broken))
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)

    async def send_all(self, records: Sequence[Outgoing], timeout_s: float) -> None:
        """Produce ``records``; return when the broker has each, or each failed (``error``).

        Records of one topic partition keep their order. A topic that cannot be sent to (no
        metadata within ``timeout_s``, a refused send) fails its own records only.
        """
        if not records:
            return
        producer = self._producer
        if producer is None:
            # Not a record's fault: the outbox starts before the agents and stops after them
            # (app/faust_app.py), so this is a wiring error, raised as such.
            raise RuntimeError("the outbox is not running")
        by_topic: dict[str, list[Outgoing]] = defaultdict(list)
        for record in records:
            by_topic[record.topic].append(record)
        await asyncio.gather(
            *(
                self._send_topic(producer, topic, rows, timeout_s)
                for topic, rows in by_topic.items()
            )
        )

    async def too_large(self, record: Outgoing) -> str | None:
        """Return why ``record`` is over its topic's limit, or None when it fits."""
        limit = await self.limits.limit(record.topic)
        size = oversize(record.key, record.value, record.headers, limit)
        return None if size is None else too_large(size, limit, record.topic)

    async def send_until_done(
        self, records: Sequence[Outgoing], timeout_s: float
    ) -> list[Outgoing]:
        """Produce the pipeline's own records; return those Kafka refused, each with its error.

        A refused record (too large for its topic, invalid, not authorised) is never sent again:
        the caller makes its failure the record's outcome. Any other failure (no answer in
        time, a leader moving, a broker away) is tried again, backing off up to 10 s, until the
        broker has the record: these records (image jobs, candidates, results) are the
        pipeline's own state, and the input batch must not be acknowledged before they are
        durable. A broker that is away holds the stream here, as it would hold any producer;
        the worker stops meanwhile (cancellation), and the batch is read again after a restart.
        """
        pending = list(records)
        delay = 0.5
        while pending:
            for record in pending:
                record.error, record.retriable, record.refused = None, False, False
            await self.send_all(pending, timeout_s)
            failed = [r for r in pending if r.error is not None and not r.refused]
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
        return [record for record in records if record.refused]

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
            retriable, refused = bool(known), False
        except (KafkaError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:300]
            retriable, refused = await self._classify(producer, topic, exc, 0)
        else:
            return
        # Why per batch: records of a partition the broker did acknowledge are delivered, and
        # must not also be reported as failed.
        queued = {id(row) for _, batch_rows in sent for row in batch_rows}
        for future, batch_rows in sent:
            if not future.done() or future.cancelled() or future.exception() is not None:
                _fail(batch_rows, reason, retriable, refused)
        _fail([row for row in rows if id(row) not in queued], reason, retriable, refused)

    async def _send_batches(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        rows: list[Outgoing],
        sent: list[tuple[asyncio.Future[object], list[Outgoing]]],
        known: list[bool],
    ) -> None:
        limit = await self.limits.limit(topic)
        rows = [row for row in rows if _fits(row, topic, limit)]
        partitions = sorted(await producer.partitions_for(topic))
        known.append(True)
        batch_bytes = min(_MAX_BATCH_BYTES, limit)
        by_partition: dict[int, list[Outgoing]] = defaultdict(list)
        for row in rows:
            by_partition[self._partitioner(row.key, partitions, partitions)].append(row)
        for partition, partition_rows in by_partition.items():
            batch = _new_batch(batch_bytes)
            in_batch: list[Outgoing] = []
            for row in partition_rows:
                if not _append(batch, row):
                    # The batch is full: send it and go on in a new one (the order is kept). A
                    # new batch takes any first record, and each was measured to fit alone.
                    sent.append((await _send(producer, batch, topic, partition), in_batch))
                    batch, in_batch = _new_batch(batch_bytes), []
                    _append(batch, row)
                in_batch.append(row)
            if in_batch:
                sent.append((await _send(producer, batch, topic, partition), in_batch))
        results = await asyncio.gather(*(future for future, _ in sent), return_exceptions=True)
        for result, (_, batch_rows) in zip(results, sent, strict=True):
            if isinstance(result, BaseException):
                retriable, refused = await self._classify(producer, topic, result, len(batch_rows))
                _fail(batch_rows, f"{type(result).__name__}: {result}"[:300], retriable, refused)

    async def _classify(
        self, producer: AIOKafkaProducer, topic: str, error: BaseException, batch_records: int
    ) -> tuple[bool, bool]:
        """Return (retriable, refused) for a failed send; replace a producer that is done for."""
        if isinstance(error, _FATAL_TO_PRODUCER) or _sender_dead(producer):
            await self._replace(producer, error)
            return True, False  # the records themselves were fine: sent again on the new one
        if isinstance(error, MessageSizeTooLargeError | RecordListTooLargeError):
            # The topic's limit changed under us. A record alone in its batch is too large for
            # certain; a fuller batch is split again within the limit read anew.
            self.limits.forget(topic)
            # Why replace: the refused batch left a gap in the producer's sequence numbers.
            await self._replace(producer, error)
            return batch_records > 1, batch_records == 1
        if isinstance(error, TimeoutError | KafkaTimeoutError) or getattr(
            error, "retriable", False
        ):
            return True, False
        # Any other error Kafka answers for a record (invalid, not authorised, a policy) will
        # be answered again: the record is refused.
        return False, isinstance(error, KafkaError)


def _fits(row: Outgoing, topic: str, limit: int) -> bool:
    """Tell whether a record fits its topic's limit; mark it refused when it does not."""
    size = oversize(row.key, row.value, row.headers, limit)
    if size is None:
        return True
    row.error, row.retriable, row.refused = too_large(size, limit, topic), False, True
    return False


def _new_batch(size: int) -> BatchBuilder:
    """Return an empty record batch of at most ``size`` bytes (more only for a lone record)."""
    # Why built here, not by producer.create_batch(): that one is as large as the producer's
    # max_batch_size whatever the topic takes. The outbox's producer is neither transactional
    # nor compressing, as these batches are.
    return BatchBuilder(size, 0, is_transactional=False)


def _sender_dead(producer: AIOKafkaProducer) -> bool:
    """Tell whether a producer's sender task has ended (it then fails every send)."""
    sender = getattr(producer, "_sender", None)
    task = getattr(sender, "sender_task", None)
    return task is not None and task.done()


async def _stop_producer(producer: AIOKafkaProducer) -> None:
    """Stop a producer, waiting at most ``_STOP_PRODUCER_S`` for what it still holds."""
    try:
        await asyncio.wait_for(producer.stop(), _STOP_PRODUCER_S)
    except (TimeoutError, KafkaError) as exc:
        log.warning("outbox: producer stopped without its last batches: %r", exc)


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
        key=row.key, value=None if row.tombstone else row.value, timestamp=None, headers=row.headers
    )
    return appended is not None


def _fail(
    rows: list[Outgoing], reason: str, retriable: bool = False, refused: bool = False
) -> None:
    for row in rows:
        if row.error is None:
            row.error, row.retriable, row.refused = reason, retriable, refused
