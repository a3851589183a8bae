"""Write records that cannot be processed to the dead-letter topic, with the reason.

A dead letter is its record's outcome, so it follows the rule every result follows: the
record's offset is committed only once the broker has its letter. In an agent's batch the
letters are collected and written, through the outbox, before the batch is acknowledged
(``written_before_ack``); elsewhere (the webhook lanes) the caller waits for the returned
future before it counts the job done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

from mode import Service

from app.kafka.outbox import Outbox, Outgoing
from app.log_throttle import LogThrottle
from app.metrics import metrics
from app.redact import redact_text
from app.settings import Settings
from models.dead_letter import DeadLetter, Stage

log = logging.getLogger(__name__)

# Per attempt; the outbox tries again (backing off) until the broker has the letters.
_SEND_TIMEOUT_S = 30.0
# Why bounded: a stop must not hang on a broker that is gone. A letter unsent after this was
# for a webhook job, which then stays unfinished and is delivered (or dead-lettered) again.
_FLUSH_ON_STOP_S = 5.0
# Why: one broken setting (a channel Kafka refuses) can dead-letter every delivery of a key;
# the topic gets each letter, the log one line per kind of reason per this many seconds.
_LOG_EVERY_S = 10.0
# What a record batch adds around one letter (its header, the record's framing, the key).
_RECORD_FRAMING_BYTES = 1024

Letter = tuple[bytes | None, DeadLetter]


class _Batch:
    """The dead letters of one agent batch, written when the batch ends."""

    def __init__(self) -> None:
        self.letters: list[Letter] = []
        self.open = True
        self.written: asyncio.Future[None] = asyncio.get_running_loop().create_future()


# Why a context variable: record_boundary reports deep inside an agent's batch, and every task
# the batch starts (its posts handled concurrently) sees the same batch.
_current_batch: ContextVar[_Batch | None] = ContextVar("ocrstream_dead_letter_batch", default=None)


class DeadLetters(Service):
    """Writes dead letters through the outbox: with their batch, or on their own."""

    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        super().__init__()
        self._settings = settings
        self._outbox = outbox
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
        """Log, count and write a dead letter; return a future done once the broker has it.

        Inside ``written_before_ack`` the letter is written with its batch; elsewhere at once,
        in the background. The future fails if the worker stops first.
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
        batch = _current_batch.get()
        if batch is not None and batch.open:
            batch.letters.append((key, letter))
            return batch.written
        # Tasks are kept so they are not garbage-collected, and so a stop can wait for them.
        task = asyncio.ensure_future(self._write([(key, letter)]))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Run one try at handling records: the letters it reported are dropped if it raises.

        Why: its records are then handled again, and each must end in one outcome, not in a
        letter from the failed try and another from the next. (A dropped letter was logged and
        counted already; the letter its record gets, if any, is logged again.)
        """
        batch = _current_batch.get()
        kept = len(batch.letters) if batch is not None else 0
        try:
            yield
        except BaseException:
            if batch is not None and batch.open:
                del batch.letters[kept:]
            raise

    @asynccontextmanager
    async def written_before_ack(self) -> AsyncIterator[None]:
        """Collect the dead letters of the block (one agent batch); write them when it ends.

        Returns only once the broker has every letter, so the batch is acknowledged after its
        dead letters, as after its results. A block left by an exception (the worker stopping)
        writes nothing: its records stay unacknowledged and are read again.
        """
        batch = _Batch()
        token = _current_batch.set(batch)
        try:
            yield
        finally:
            batch.open = False
            _current_batch.reset(token)
        try:
            await self._write(batch.letters)
        except BaseException as exc:
            batch.written.set_exception(exc)
            batch.written.exception()  # retrieved: the exception goes on from here
            raise
        batch.written.set_result(None)

    async def _write(self, letters: list[Letter]) -> None:
        """Write ``letters``, trying again until the broker has them (or refused them)."""
        if not letters:
            return
        topic = self._settings.dead_letter_topic
        # Why fitted: a letter over the topic's limit would be refused, and lost with it.
        room = await self._outbox.limits.limit(topic) - _RECORD_FRAMING_BYTES
        records = [Outgoing(topic, key, letter.cut_to(room)) for key, letter in letters]
        for record in await self._outbox.send_until_done(records, _SEND_TIMEOUT_S):
            # Refused by Kafka itself (not authorised, a policy): nothing more can be done;
            # the warning logged at rejection still holds the record's coordinates.
            log.error("dead letter refused by %s: %s", topic, record.error)

    async def on_stop(self) -> None:
        """Wait (bounded) for letters written on their own; what is left stays unfinished."""
        if self._pending:
            _, unsent = await asyncio.wait(set(self._pending), timeout=_FLUSH_ON_STOP_S)
            for task in unsent:
                task.cancel()
            if unsent:
                log.error(
                    "%d dead letter(s) not written before stop; their jobs are tried again",
                    len(unsent),
                )
