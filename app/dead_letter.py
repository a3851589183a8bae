"""Send records that cannot be processed to the dead-letter topic, with the reason."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from mode import Service

from app.faust_app import app, settings
from app.metrics import metrics
from models.dead_letter import DeadLetter, Stage

log = logging.getLogger(__name__)

# Why a producer of its own, waiting for the broker's ack: a dead letter is the only trace of a
# rejected record. Through Faust's producer one was seen never to arrive (buffered) or never to
# be acknowledged (awaited) in about one CI run in three; rejects are rare, so this costs little.
_SEND_TIMEOUT_S = 30.0
_producer: AIOKafkaProducer | None = None
_lock = asyncio.Lock()


async def _get_producer() -> AIOKafkaProducer:
    global _producer
    async with _lock:
        if _producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=settings.broker, acks="all")
            await producer.start()
            _producer = producer
    return _producer


async def send_dead_letter(
    stage: Stage,
    reason: str,
    event: Any,
    raw: bytes | str | None = None,
    image_url: str | None = None,
) -> None:
    """Log and publish why a record from ``event`` (a Faust event) was rejected."""
    message = event.message
    letter = DeadLetter(
        stage=stage,
        reason=reason,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        record=DeadLetter.excerpt(raw if raw is not None else event.value),
        image_url=image_url,
    )
    report_dead_letter(letter, message.key)


def report_dead_letter(letter: DeadLetter, key: bytes | None) -> asyncio.Future[None]:
    """Log, count and publish (in the background) a dead letter; return the publishing task.

    The task ends when the broker has the letter or the send failed for good (logged).
    """
    log.warning(
        "dead letter: stage=%s topic=%s partition=%s offset=%s reason=%s",
        letter.stage,
        letter.topic,
        letter.partition,
        letter.offset,
        letter.reason,
    )
    metrics.count(f"dead_letters.{letter.stage}")
    metrics.error(letter.stage, letter.reason)
    # Why in the background: a dead-letter send that hung once stalled the whole worker;
    # the stream must never wait on it. Tasks are kept so they are not garbage-collected.
    task = asyncio.ensure_future(_publish(key, letter))
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task


_pending: set[asyncio.Future[None]] = set()


async def _publish(key: bytes | None, letter: DeadLetter) -> None:
    try:
        producer = await _get_producer()
        await asyncio.wait_for(
            producer.send_and_wait(
                settings.dead_letter_topic, key=key, value=letter.model_dump_json().encode()
            ),
            _SEND_TIMEOUT_S,
        )
    except (TimeoutError, KafkaError) as exc:
        # The warning logged at rejection still holds the record's coordinates.
        log.error("dead letter not written to %s: %r", settings.dead_letter_topic, exc)


# Why bounded: a stop must not hang on a broker that is gone; what is still unsent after this
# is logged (the warning written at rejection already holds each record's coordinates).
_FLUSH_ON_STOP_S = 5.0


class DeadLetterFlusher(Service):
    """On worker stop, waits (bounded) for dead letters still being sent, then closes."""

    async def on_stop(self) -> None:
        """Wait for pending dead letters, then stop their producer."""
        global _producer
        if _pending:
            _, unsent = await asyncio.wait(set(_pending), timeout=_FLUSH_ON_STOP_S)
            if unsent:
                log.error("%d dead letter(s) not written before stop", len(unsent))
        if _producer is not None:
            producer, _producer = _producer, None
            await producer.stop()


# Faust starts an instance as readily as a class (App._prepare_subservice); its stub says class.
app.service(DeadLetterFlusher())  # type: ignore[arg-type]
