"""The live-stream hub: one reader of the delivery candidates per worker, fanned out per key.

Why the candidates topic and not the channel topics: a client may connect to any worker, so
each worker must see every key's deliveries; one group-less reader of the candidates topic
does that for all connected keys at once, applying the same ``delivery_for`` as the filter
agent, so a stream carries exactly what the key's channels get. The reader runs only while
someone is connected and starts at the end of the topic: a stream is live, not a replay
(channel topics and webhooks are the durable deliveries).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer
from mode import Service

from app.kafka.consumers import consume_until_stopped
from app.kafka.security import connection
from app.live.feed import BoundedFeed, Closed, LiveEvent
from app.metrics import metrics
from app.pipeline.candidates import read_candidates
from app.pipeline.delivery import delivery_for
from app.pipeline.key_directory import KeyDirectory
from app.pipeline.records import RecordRefused
from app.settings import Settings
from models.events import Candidate, event_json
from models.keys import KeyRecord

log = logging.getLogger(__name__)

# WebSocket close codes (RFC 6455): 1001 going away, 1008 policy violation.
GOING_AWAY = Closed(1001, "worker shutting down")
REVOKED = Closed(1008, "API key revoked")
# Why linger: a client that reconnects at once should not pay for a new reader each time.
_LINGER_S = 30.0


# The subscription name of the public stream (no key id is empty).
PUBLIC = ""
# Why 100: the public stream shows a glimpse of the firehose, not the whole of each event.
PUBLIC_TEXT_CHARS = 100


class TooManyStreams(Exception):
    """The key already holds its allowed number of live streams on this worker."""


class LiveHub(Service):
    """Feeds every open live stream of this worker with its key's deliveries."""

    def __init__(self, settings: Settings, keys: KeyDirectory) -> None:
        super().__init__()
        self._settings = settings
        self._keys = keys
        self._dropped = 0
        self._feeds: dict[str, set[BoundedFeed]] = defaultdict(set)
        # The last few events of each key streamed lately (and of the public stream), so a
        # client that reconnects with Last-Event-ID gets what it missed.
        self._recent: dict[str, deque[LiveEvent]] = {}
        # When the last stream of a key closed: its kept events are dropped after _LINGER_S.
        self._left_at: dict[str, float] = {}
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        # Events offered before the reader lets the connections' writers run: well under a
        # feed's bound, so a client that keeps up never has its events dropped.
        self._offer_slice = max(1, min(32, settings.stream_buffer_events // 2))
        self._offered_since_yield = 0
        keys.watch(self._key_changed)

    @asynccontextmanager
    async def subscription(
        self, key_id: str, last_event_id: str | None = None
    ) -> AsyncIterator[BoundedFeed]:
        """Register a live stream of ``key_id`` (``PUBLIC``: the public one) for the block.

        With ``last_event_id`` the feed starts with the events kept since that one (all kept
        ones when it is not among them). Raises TooManyStreams past the cap.
        """
        feeds = self._feeds[key_id]
        cap = (
            self._settings.public_stream_max
            if key_id == PUBLIC
            else self._settings.stream_max_per_key
        )
        if len(feeds) >= cap:
            raise TooManyStreams(key_id)
        feed = BoundedFeed(self._settings.stream_buffer_events)
        if last_event_id is not None:
            for event in missed_since(self._recent.get(key_id, ()), last_event_id):
                feed.offer(event)
        feeds.add(feed)
        self._left_at.pop(key_id, None)
        metrics.live_connections += 1
        try:
            if self._reader is None or self._reader.done():
                self._reader = asyncio.ensure_future(self._read())
            yield feed
        finally:
            metrics.live_connections -= 1
            feeds.discard(feed)
            if not feeds:
                self._feeds.pop(key_id, None)
                self._left_at[key_id] = time.monotonic()

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the reader stands at the end of the topic; False if not within timeout."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def status(self) -> dict[str, Any]:
        """Return open streams, keys streamed and events dropped (for /status/)."""
        return {
            "connections": metrics.live_connections,
            "keys": len(self._feeds),
            "reading": self._ready.is_set(),
            "dropped": self._dropped,
        }

    async def on_stop(self) -> None:
        """Close every stream with "going away", then stop the reader."""
        for feeds in self._feeds.values():
            for feed in feeds:
                feed.close(GOING_AWAY)
        if self._reader is not None:
            self._reader.cancel()

    def _key_changed(self, key_id: str, record: KeyRecord | None) -> None:
        if record is None or record.revoked:
            for feed in self._feeds.get(key_id, ()):
                feed.close(REVOKED)

    async def _read(self) -> None:
        # Why this stop condition: no await lies between seeing no feeds and the task ending,
        # so a stream that subscribes meanwhile always finds a reader or starts one.
        await consume_until_stopped(
            lambda: self.should_stop or not self._feeds,
            lambda: AIOKafkaConsumer(
                # Why no group: every worker reads every partition (and new ones as they come).
                self._settings.candidates_topic,
                **connection(self._settings),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
            ),
            self._tail,
            "live streams",
        )

    async def _tail(self, consumer: AIOKafkaConsumer) -> None:
        while not consumer.assignment():
            await asyncio.sleep(0.05)  # the partitions come with the first metadata answer
        for tp in consumer.assignment():
            await consumer.position(tp)  # resolve "latest" now: events after this are streamed
        self._ready.set()
        log.info("live streams: reading %s from its end", self._settings.candidates_topic)
        idle_since: float | None = None
        try:
            while not self.should_stop:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                for records in batch.values():
                    for record in records:
                        position = f"{record.partition}-{record.offset}"
                        await self._fan_out(position, record.value or b"")
                self._forget_departed(time.monotonic() - _LINGER_S)
                if self._feeds:
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > _LINGER_S:
                    log.info("live streams: nobody connected; reader stopped")
                    self._recent.clear()  # what follows would have a gap: keep nothing
                    self._left_at.clear()
                    return
        finally:
            self._ready.clear()

    def _forget_departed(self, before: float) -> None:
        # Why: a key that left for good must not cost a filter per event for ever.
        for key_id, left_at in list(self._left_at.items()):
            if left_at < before:
                del self._left_at[key_id]
                self._recent.pop(key_id, None)

    async def _fan_out(self, position: str, value: bytes) -> None:
        # Why the keys streamed lately too: a client that dropped and reconnects with
        # Last-Event-ID gets what came while it was away (as long as the reader lingers).
        streamed = set(self._feeds) | set(self._recent)
        if not streamed:
            return
        try:
            offered = read_candidates(value)
        except RecordRefused:
            return  # the filter agent dead-letters it
        for index, item in enumerate(offered):
            # Why the index: a bundle holds many candidates at one position of the topic.
            event_id = f"{position}-{index}" if item.bundled else position
            self._offer(streamed, event_id, item.candidate)
            self._offered_since_yield += 1
            if self._offered_since_yield >= self._offer_slice:
                # Why: a bundle holds hundreds of posts and a fetch hundreds of records; offered
                # in one go they would fill a fast client's feed before its writer ran once.
                # Each writer empties its feed into its socket whenever it gets the loop.
                self._offered_since_yield = 0
                await asyncio.sleep(0)

    def _offer(self, streamed: set[str], event_id: str, candidate: Candidate) -> None:
        for key_id in streamed:
            feeds = self._feeds.get(key_id, set())
            if key_id == PUBLIC:
                delivery: dict[str, Any] | None = public_view(candidate.event)
            else:
                key = self._keys.get(key_id)
                if key is None or key.revoked:
                    continue
                delivery = delivery_for(key, candidate)
            if delivery is None:
                continue
            event = LiveEvent(event_id, event_json(delivery))
            recent = self._recent.get(key_id)
            if recent is None:
                recent = self._recent[key_id] = deque(maxlen=self._settings.stream_resume_events)
            recent.append(event)
            for feed in feeds:
                if not feed.offer(event):
                    metrics.stream_events.labels(outcome="dropped").inc()
                    self._dropped += 1


def public_view(event: dict[str, Any]) -> dict[str, Any]:
    """Return an event as the public stream shows it: an allow-list of fields, each bounded.

    Why an allow-list, not the event with its text cut: any field added to events later (a QR
    code's text, a long link) would otherwise reach every anonymous reader whole.
    """
    view: dict[str, Any] = {"source": _bounded(event.get("source"), 20)}
    ref = event.get("ref") if view["source"] == "ocr_result" else event
    ref = ref if isinstance(ref, dict) else {}
    post = {name: _bounded(ref.get(name), limit) for name, limit in _PUBLIC_REF.items()}
    if view["source"] == "ocr_result":
        view["ref"] = post
    else:
        view |= post
    view["text"] = _bounded(event.get("text"), PUBLIC_TEXT_CHARS)
    found = event.get("buy_ca")
    addresses: list[Any] = found if isinstance(found, list) else []
    if view["source"] == "ocr_result" or addresses:
        # Why whole or not at all: a cut address is another address (a Sui coin type is 76+).
        view["buy_ca"] = [
            {"network": _bounded(ca.get("network"), 16), "address": ca["address"]}
            for ca in addresses[:_PUBLIC_ADDRESSES]
            if isinstance(ca, dict)
            and isinstance(ca.get("address"), str)
            and len(ca["address"]) <= _PUBLIC_ADDRESS_CHARS
        ]
    return view


# The post's fields the public sees, and their bounds (ids, and the link to the public post).
_PUBLIC_REF = {"source": 20, "mid": 64, "link": 300}
_PUBLIC_ADDRESSES = 5
_PUBLIC_ADDRESS_CHARS = 200


def _bounded(value: Any, limit: int) -> str:
    """Return ``value`` as text of at most ``limit`` characters ("" when it is not text)."""
    return value[:limit] if isinstance(value, str) else ""


def missed_since(recent: Iterable[LiveEvent], last_event_id: str) -> list[LiveEvent]:
    """Return the kept events after ``last_event_id``; all of them when it is not among them."""
    kept = list(recent)
    ids = [event.id for event in kept]
    if last_event_id in ids:
        return kept[ids.index(last_event_id) + 1 :]
    return kept
