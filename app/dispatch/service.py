"""The webhook delivery service: reads the webhooks topic and POSTs each job to its endpoint.

Each endpoint (a key's URL) has a lane: its jobs go out one at a time, in the order they were
read, retried with backoff until delivered or dead-lettered. Lanes run side by side under one
concurrency cap, so a slow or failing endpoint delays only its own jobs. A lane holds at most
``webhook_max_pending`` jobs: beyond that, an endpoint that cannot keep up gets its overflow
dead-lettered at once (with the job, to replay) rather than holding memory or the partition.
An offset is committed only when every job below it is finished (a dead letter counts once
the broker has it), so a crash repeats deliveries (same delivery id) but never loses one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from mode import Service

from app.dispatch.destinations import (
    DeliveryRequest,
    NotDeliverable,
    TelegramBot,
    channel_record_for,
    request_for,
)
from app.dispatch.fair_slots import FairSlots
from app.dispatch.pace import ChatPace
from app.dispatch.policy import backoff_delay
from app.dispatch.progress import PartitionProgress
from app.dispatch.sender import Attempt, new_webhook_session, post_delivery
from app.fetch import limits_from
from app.kafka.consumers import consume_until_stopped
from app.kafka.outbox import Outgoing
from app.kafka.security import connection
from app.metrics import metrics
from app.pipeline.dead_letters import DeadLetters
from app.pipeline.key_directory import KeyDirectory
from app.pipeline.records import RecordRefused, decode_with
from app.sealing import SecretKeyError, box_for
from app.settings import Settings
from models.dead_letter import DeadLetter
from models.delivery_jobs import (
    HeldChannelSend,
    TelegramMessage,
    WebhookPost,
    delivery_job_adapter,
)
from models.keys import ControlCommand, MarkTelegram

log = logging.getLogger(__name__)

_COMMIT_INTERVAL_S = 1.0
# Why: an idle lane's task is ended so endpoints that went quiet cost nothing.
_LANE_IDLE_S = 60.0


@dataclass
class _Job:
    record: ConsumerRecord[bytes, bytes]
    progress: PartitionProgress


@dataclass
class _Lane:
    queue: asyncio.Queue[_Job] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    # Where its jobs go, as the dashboard shows it (known once the first job is read).
    shown: str = "(not read yet)"
    key_id: str = ""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: WebhookDelivery) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._service.release(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("webhooks: partitions %s", sorted(tp.partition for tp in assigned))


class WebhookDelivery(Service):
    """Delivers the webhooks topic to its endpoints (a consumer group of its own)."""

    def __init__(self, settings: Settings, keys: KeyDirectory, dead_letters: DeadLetters) -> None:
        super().__init__()
        self._settings = settings
        self._keys = keys
        self._dead_letters = dead_letters
        self._overflowed = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._progress: dict[TopicPartition, PartitionProgress] = {}
        self._lanes: dict[bytes, _Lane] = {}
        # Why per key: one key's endpoints that hang must delay only that key (fair_slots.py).
        self._slots = FairSlots(self._settings.webhook_concurrency)
        self._limits = limits_from(settings)
        self._committed: dict[TopicPartition, int] = {}
        # Why only when set: the worker refuses to start without it; tests of the service
        # alone may give records whose secret is in clear.
        has_key = settings.secret_key is not None or bool(settings.secret_key_file)
        self._box = box_for(settings) if has_key else None
        token = settings.telegram_bot_token
        self._bot = (
            TelegramBot(settings.telegram_api_url, token.get_secret_value()) if token else None
        )
        self._telegram_pace = ChatPace(
            settings.telegram_chat_interval_s,
            settings.telegram_group_interval_s,
            settings.telegram_max_per_s,
        )
        self._send_control: Callable[[ControlCommand], Awaitable[None]] | None = None
        self._send_channel: Callable[[Outgoing], Awaitable[None]] | None = None

    def use_control(self, send: Callable[[ControlCommand], Awaitable[None]]) -> None:
        """Give the service a way to change keys (a Telegram chat the bot was removed from)."""
        self._send_control = send

    def use_channels(self, send: Callable[[Outgoing], Awaitable[None]]) -> None:
        """Give the service a way to produce held channel deliveries (sets ``error`` on failure)."""
        self._send_channel = send

    async def on_start(self) -> None:
        """Start consuming the webhooks topic."""
        # Why one session for the service's life: lanes outlive a consumer that fails and is
        # replaced, and must not be left holding a closed session.
        self._session = new_webhook_session(
            self._limits, self._settings.webhook_timeout_s, self._settings.webhook_concurrency
        )
        self._operator_session = new_webhook_session(
            None, self._settings.webhook_timeout_s, self._settings.webhook_concurrency
        )
        self.add_future(
            consume_until_stopped(
                lambda: self.should_stop, self._new_consumer, self._consume, "webhooks"
            )
        )

    async def on_stop(self) -> None:
        """Stop the lanes; finished jobs are committed, unfinished ones are read again later."""
        for lane in self._lanes.values():
            if lane.task is not None:
                lane.task.cancel()
        await self._session.close()
        await self._operator_session.close()

    @property
    def _telegram_pace_said(self) -> str:
        settings = self._settings
        return (
            f"Telegram's pace: a message per {settings.telegram_chat_interval_s:g} s to a "
            f"private chat, per {settings.telegram_group_interval_s:g} s to a group"
        )

    def status(self) -> dict[str, Any]:
        """Return lanes and pending jobs per partition (for /status/)."""
        return {
            "lanes": sum(1 for lane in self._lanes.values() if lane.task and not lane.task.done()),
            "queued": sum(lane.queue.qsize() for lane in self._lanes.values()),
            "pending": {_name(tp): p.pending for tp, p in self._progress.items()},
            "overflowed": self._overflowed,
            # The destinations furthest behind: which one a queue is waiting on, and why.
            "behind": [
                {
                    "destination": lane.shown,
                    "key_id": lane.key_id,
                    "queued": lane.queue.qsize(),
                    **(
                        {"why": self._telegram_pace_said}
                        if lane.shown.startswith("telegram")
                        else {}
                    ),
                }
                for lane in sorted(self._lanes.values(), key=lambda lane: -lane.queue.qsize())[:5]
                if lane.queue.qsize()
            ],
            # Send slots in use by key, and each key's share now (fair_slots.py).
            "slots": {"share": self._slots.share(), "by_key": self._slots.holding()},
        }

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        consumer.subscribe([self._settings.webhooks_topic], listener=_Rebalance(self))
        try:
            await self._keys.wait_ready()  # the secret and the current URLs come from there
            last_commit = time.monotonic()
            while not self.should_stop:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                for tp, records in batch.items():
                    progress = self._progress.setdefault(tp, PartitionProgress())
                    for record in records:
                        progress.begin(record.offset)
                        self._enqueue(_Job(record, progress))
                if time.monotonic() - last_commit >= _COMMIT_INTERVAL_S:
                    await self._commit(consumer)
                    last_commit = time.monotonic()
        finally:
            await self._commit(consumer)
            self._consumer = None
            # A replacement consumer starts from the committed offsets with fresh bookkeeping;
            # jobs still in lanes finish on the progress objects they hold.
            self._progress.clear()
            self._committed.clear()

    def _enqueue(self, job: _Job) -> None:
        endpoint = job.record.key or b""
        lane = self._lanes.get(endpoint)
        if lane is None:
            lane = self._lanes[endpoint] = _Lane()
        if lane.queue.qsize() >= self._settings.webhook_max_pending:
            # Why not wait: the partition also holds other endpoints' jobs, which must not stall
            # behind one endpoint that cannot keep up; the dead letter keeps the job to replay.
            metrics.webhook_deliveries.labels(outcome="overflow").inc()
            self._overflowed += 1
            reason = (
                f"endpoint backlog over {self._settings.webhook_max_pending} jobs: not attempted"
            )
            self._finish_later(job, self._dead_letter(job.record, None, reason, 0))
            return
        lane.queue.put_nowait(job)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.ensure_future(self._drain(endpoint, lane))

    async def _drain(self, endpoint: bytes, lane: _Lane) -> None:
        while True:
            try:
                job = await asyncio.wait_for(lane.queue.get(), _LANE_IDLE_S)
            except TimeoutError:
                # No await between the emptiness check and the removal: no job can slip in.
                if lane.queue.empty():
                    self._lanes.pop(endpoint, None)
                    return
                continue
            try:
                dead_letter = await self._deliver(job.record, lane)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Why catch all: one bad job must not end the lane and strand the jobs after it.
                log.exception("webhooks: delivery of offset %s failed", job.record.offset)
                reason = "internal error (see the worker log)"
                dead_letter = self._dead_letter(job.record, None, reason, 0)
            if dead_letter is None:
                job.progress.finish(job.record.offset)
            else:
                self._finish_later(job, dead_letter)

    async def _deliver(
        self, record: ConsumerRecord[bytes, bytes], lane: _Lane | None = None
    ) -> asyncio.Future[None] | None:
        """Deliver one job; return the dead letter being written when it was not delivered."""
        try:
            job = decode_with(record.value, delivery_job_adapter, "delivery job")
        except RecordRefused as exc:
            return self._dead_letter(record, None, str(exc), 0)
        if lane is not None:
            lane.shown, lane.key_id = job.shown, job.key_id
        if isinstance(job, HeldChannelSend):
            return await self._deliver_to_channel(record, job)
        attempt_no, waits = 1, 0
        with metrics.tracking(f"{job.post} → {job.shown}", "webhook"):
            while True:
                try:
                    # Why build it for every attempt: a revoke, a removed URL, a rotated secret
                    # or an inactive chat applies to deliveries already waiting.
                    key = self._keys.get(job.key_id)
                    request = request_for(job, key, attempt_no, self._bot, self._box)
                except NotDeliverable:
                    metrics.webhook_deliveries.labels(outcome="skipped").inc()
                    return None
                except SecretKeyError as exc:
                    log.error("webhooks: key %s: %s", job.key_id, exc)
                    reason = f"the signing secret cannot be opened: {exc}"
                    return self._dead_letter(record, job.destination, reason, attempt_no)
                if isinstance(job, TelegramMessage):
                    await self._telegram_pace.wait_turn(job.chat_id)
                attempt = await self._post(request, job.key_id)
                if attempt.result == "delivered":
                    metrics.webhook_deliveries.labels(outcome="delivered").inc()
                    return None
                if attempt.result == "inactive":
                    await self._mark_inactive(job, attempt.detail)
                    break
                if attempt.rate_limited and waits < self._settings.webhook_rate_limited_waits:
                    # Why not an attempt: the endpoint is fine, only busy, and said how long.
                    waits += 1
                    delay = min(
                        attempt.retry_after_s or 0.0, self._settings.webhook_retry_after_max_s
                    )
                    if isinstance(job, TelegramMessage):
                        self._telegram_pace.hold(job.chat_id, delay)
                    metrics.stage(f"rate limited {waits} (waiting {delay:.0f} s)")
                    await asyncio.sleep(delay)
                    continue
                if attempt.result == "give_up" or attempt_no == self._settings.webhook_max_attempts:
                    break
                metrics.stage(f"retry {attempt_no} ({attempt.detail})")
                await asyncio.sleep(
                    backoff_delay(
                        attempt_no,
                        self._settings.webhook_backoff_base_s,
                        self._settings.webhook_backoff_max_s,
                        attempt.retry_after_s,
                    )
                )
                attempt_no += 1
        reason = _reason(attempt, attempt_no)
        return self._dead_letter(record, job.destination, reason, attempt_no)

    async def _deliver_to_channel(
        self, record: ConsumerRecord[bytes, bytes], job: HeldChannelSend
    ) -> asyncio.Future[None] | None:
        """Send a held channel delivery, with the lanes' backoff, while the failure may pass."""
        if self._send_channel is None:
            return self._dead_letter(record, job.destination, "no channel sender", 0)
        attempts = self._settings.channel_retry_attempts
        with metrics.tracking(f"{job.post} → {job.shown}", "channel"):
            for attempt_no in range(1, attempts + 1):
                try:
                    outgoing = channel_record_for(job, self._keys.get(job.key_id))
                except NotDeliverable:
                    metrics.webhook_deliveries.labels(outcome="skipped").inc()
                    return None
                await self._send_channel(outgoing)
                if outgoing.error is None:
                    metrics.deliveries.labels(outcome="sent_after_hold").inc()
                    return None
                if not outgoing.retriable or attempt_no == attempts:
                    break
                metrics.stage(f"retry {attempt_no} ({outgoing.error})")
                await asyncio.sleep(
                    backoff_delay(
                        attempt_no,
                        self._settings.webhook_backoff_base_s,
                        self._settings.webhook_backoff_max_s,
                        None,
                    )
                )
        reason = (
            f"channel {job.channel} unavailable after {attempt_no} attempt(s): {outgoing.error}"
        )
        return self._dead_letter(record, job.destination, reason, attempt_no)

    async def _post(self, request: DeliveryRequest, key_id: str) -> Attempt:
        started = time.monotonic()
        # Why two sessions: webhooks go through the resolver that refuses internal addresses;
        # the operator's Bot API server may well be one.
        session = self._session if request.check_target else self._operator_session
        async with self._slots.slot(key_id):
            attempt = await post_delivery(session, request, self._limits)
        metrics.webhook_ms.observe_ms((time.monotonic() - started) * 1000)
        metrics.webhook_deliveries.labels(outcome=attempt.kind).inc()
        return attempt

    async def _mark_inactive(self, job: WebhookPost | TelegramMessage, detail: str) -> None:
        """Tell every worker the bot can no longer write to the chat (the control topic)."""
        metrics.webhook_deliveries.labels(outcome="inactive").inc()
        if self._send_control is None or not isinstance(job, TelegramMessage):
            return
        command = MarkTelegram(
            key_id=job.key_id,
            subscription_id=job.subscription_id,
            status="INACTIVE",
            reason=f"Telegram answered {detail}"[:300],
        )
        try:
            await self._send_control(command)
        except Exception:
            # Why not fatal: the next job to this chat gets the same 403 and tries again.
            log.exception("webhooks: could not mark the Telegram subscription inactive")

    def _finish_later(self, job: _Job, sent: asyncio.Future[None]) -> None:
        """Mark the job finished once the broker has its dead letter (its outcome)."""

        def finish(written: asyncio.Future[None]) -> None:
            # A letter cut short by the stop leaves the job unfinished: tried again after it.
            if not written.cancelled() and written.exception() is None:
                job.progress.finish(job.record.offset)

        sent.add_done_callback(finish)

    def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], url: str | None, reason: str, attempts: int
    ) -> asyncio.Future[None]:
        metrics.webhook_deliveries.labels(outcome="dead_lettered").inc()
        letter = DeadLetter(
            stage="webhook",
            reason=reason,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            record=DeadLetter.excerpt(record.value),
            record_bytes=DeadLetter.size_of(record.value),
            webhook_url=url,
            attempts=attempts,
        )
        return self._dead_letters.report(letter, record.key)

    async def _commit(
        self, consumer: AIOKafkaConsumer, only: list[TopicPartition] | None = None
    ) -> None:
        offsets = {}
        for tp, progress in self._progress.items():
            point = progress.commit_point()
            if (
                (only is None or tp in only)
                and point is not None
                and self._committed.get(tp) != point
            ):
                offsets[tp] = point
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
            self._committed.update(offsets)
        except (KafkaError, AssertionError) as exc:
            # Not fatal: the next commit carries the same offsets, or a rebalance repeats work.
            log.warning("webhooks: commit failed: %r", exc)

    def _new_consumer(self) -> AIOKafkaConsumer:
        return _consumer_for(self._settings)

    async def release(self, revoked: list[TopicPartition]) -> None:
        """Commit what is finished on partitions leaving this worker, and forget them."""
        if self._consumer is not None:
            await self._commit(self._consumer, revoked)
        for tp in revoked:
            # Jobs still queued from these partitions are delivered anyway; the new owner
            # repeats them from the commit point (same delivery id, so receivers can drop them).
            self._progress.pop(tp, None)
            self._committed.pop(tp, None)


def _consumer_for(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **connection(settings),
        group_id=f"{settings.app_id}-webhooks",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval_s * 1000),
    )


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}/{tp.partition}"


def _reason(attempt: Attempt, attempts: int) -> str:
    if attempt.result == "inactive":
        return f"the bot cannot write to the chat: {attempt.detail}; subscription now INACTIVE"
    if attempt.result == "give_up":
        return f"webhook refused the delivery: {attempt.detail} (not retried)"
    return f"webhook failed {attempts} times; last: {attempt.detail}"
