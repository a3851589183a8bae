"""Send records that cannot be processed to the dead-letter topic, with the reason."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from mode import Service

from app.kafka.limits import TopicLimits
from app.log_throttle import LogThrottle
from app.metrics import metrics
from app.redact import redact_text
from app.settings import Settings
from models.dead_letter import DeadLetter, Stage

log = logging.getLogger(__name__)

# Why a producer of its own, waiting for the broker's ack: a dead letter is the only trace of a
# rejected record. Through Faust's producer one was seen never to arrive (buffered) or never to
# be acknowledged (awaited) in about one CI run in three; rejects are rare, so this costs little.
_SEND_TIMEOUT_S = 30.0
# Why bounded: a stop must not hang on a broker that is gone; what is still unsent after this
# is logged (the warning written at rejection already holds each record's coordinates).
_FLUSH_ON_STOP_S = 5.0
# Why: one broken setting (a channel Kafka refuses) can dead-letter every delivery of a key;
# the topic gets each letter, the log one line per kind of reason per this many seconds.
_LOG_EVERY_S = 10.0
# What a record batch adds around one letter (its header, the record's framing, the key).
_RECORD_FRAMING_BYTES = 1024


class DeadLetters(Service):
    """Publishes dead letters in the background; on stop, flushes them (bounded) and closes."""

    def __init__(self, settings: Settings, limits: TopicLimits) -> None:
        super().__init__()
        self._settings = settings
        self._limits = limits
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Future[None]] = set()
        self._log_throttle = LogThrottle(_LOG_EVERY_S)

    async def send(
        self,
        stage: Stage,
        reason: str,
        event: Any,
        raw: bytes | str | None = None,
        image_url: str | None = None,
    ) -> None:
        """Log and publish why a record from ``event`` (a Faust event) was rejected."""
        message = event.message
        rejected = raw if raw is not None else event.value
        letter = DeadLetter(
            stage=stage,
            reason=reason,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            record=DeadLetter.excerpt(rejected),
            record_bytes=DeadLetter.size_of(rejected),
            image_url=image_url,
        )
        self.report(letter, message.key)

    def report(self, letter: DeadLetter, key: bytes | None) -> asyncio.Future[None]:
        """Log, count and publish (in the background) a dead letter; return the publishing task.

        The task ends when the broker has the letter or the send failed for good (logged).
        """
        repeats = self._log_throttle.allow(f"{letter.stage}:{letter.reason[:60]}")
        if repeats is not None:
            log.warning(
                "dead letter: stage=%s topic=%s partition=%s offset=%s reason=%s%s",
                letter.stage,
                letter.topic,
                letter.partition,
                letter.offset,
                redact_text(letter.reason),
                f" (and {repeats} more like it in the last {_LOG_EVERY_S:.0f} s)"
                if repeats
                else "",
            )
            # Why with the log line: one broken setting must not push every other error off the
            # status page's short list of recent ones.
            metrics.error(letter.stage, letter.reason, "dead letter")
        metrics.dead_letters.labels(stage=letter.stage).inc()
        # Why in the background: a dead-letter send that hung once stalled the whole worker;
        # the stream must never wait on it. Tasks are kept so they are not garbage-collected.
        task = asyncio.ensure_future(self._publish(key, letter))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def _get_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(bootstrap_servers=self._settings.broker, acks="all")
                await producer.start()
                self._producer = producer
        return self._producer

    async def _publish(self, key: bytes | None, letter: DeadLetter) -> None:
        topic = self._settings.dead_letter_topic
        try:
            producer = await self._get_producer()
            # Why fitted: a letter over the topic's limit would be refused, and lost with it.
            value = letter.cut_to(await self._limits.limit(topic) - _RECORD_FRAMING_BYTES)
            await asyncio.wait_for(
                producer.send_and_wait(topic, key=key, value=value), _SEND_TIMEOUT_S
            )
        except (TimeoutError, KafkaError) as exc:
            # The warning logged at rejection still holds the record's coordinates.
            log.error("dead letter not written to %s: %r", topic, exc)

    async def on_stop(self) -> None:
        """Wait for pending dead letters, then stop their producer."""
        if self._pending:
            _, unsent = await asyncio.wait(set(self._pending), timeout=_FLUSH_ON_STOP_S)
            if unsent:
                log.error("%d dead letter(s) not written before stop", len(unsent))
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()
