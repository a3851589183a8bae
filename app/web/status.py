"""What a worker reports about itself: ``/status/`` (JSON) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from app.activity import Activity, History, activity
from app.dispatch.service import WebhookDelivery
from app.keys.replica import KeysReplica
from app.live.hub import LiveHub
from app.metrics import metrics
from app.ocr.runtime import OcrRuntime
from app.pipeline.address_book import AddressBooks
from app.pipeline.known_addresses import KnownAddresses
from app.settings import Settings
from app.web.scrape import WorkerState, render, scrape_registry
from models.keys import KeyRecord


class StatusReport:
    """Reads the worker's state when asked; nothing is kept twice."""

    def __init__(
        self,
        faust_app: Any,
        settings: Settings,
        keys: KeysReplica,
        ocr: OcrRuntime,
        live: LiveHub,
        webhooks: WebhookDelivery,
        books: AddressBooks | None = None,
        known: KnownAddresses | None = None,
    ) -> None:
        self._app = faust_app
        self._books = books
        self._known = known
        self._settings = settings
        self._keys = keys
        self._ocr = ocr
        self._live = live
        self._webhooks = webhooks
        self.activity: Activity = activity
        self._history = History(started_at=metrics.started_at)
        # Every counter's rate over the last step (the history keeps only the pipeline's).
        self._every_counter = History(started_at=metrics.started_at)
        self.rates_now: dict[str, float] = {}
        # Why a registry of our own: the global default one would also export this process's
        # Python internals under names that differ per client version; we export what we
        # document.
        self.registry = scrape_registry(
            metrics,
            WorkerState(metrics, lambda: faust_app.monitor, lambda: ocr.cache, self.partition_lag),
        )

    def prometheus_text(self) -> bytes:
        """Return the worker's metrics in Prometheus' text format."""
        return render(self.registry)

    def partition_lag(self) -> dict[str, int]:
        """Return, per ``topic/partition`` this worker consumes, records not yet committed."""
        monitor: Any = self._app.monitor
        lag: dict[str, int] = {}
        for tp, end in sorted(dict(monitor.tp_end_offsets or {}).items()):
            done = (monitor.tp_committed_offsets or {}).get(tp)
            if done is None:
                read = (monitor.tp_read_offsets or {}).get(tp)
                done = read + 1 if read is not None else end
            lag[f"{tp.topic}/{tp.partition}"] = max(0, end - done)
        return lag

    def sample(self) -> None:
        """Add one point to the dashboard's history (called every HISTORY_STEP_S seconds)."""
        totals = metrics.totals()
        counts = {
            "posts": totals.get("posts", 0),
            "images": totals.get("image_jobs", 0),
            "ocr_results": totals.get("ocr_results", 0),
            # Why apart: an image refused by policy (a bad scheme, past the per-post cap) is
            # the rule working, not a failure to read it.
            "image_errors": _sum_of(totals, "image_errors")
            - totals.get("image_errors{kind=refused}", 0),
            "images_refused": totals.get("image_errors{kind=refused}", 0),
            "deliveries": totals.get("deliveries{outcome=sent}", 0),
            "dead_letters": _sum_of(totals, "dead_letters"),
            "ocr_requests": totals.get("ocr_requests", 0),
        }
        by_topic = consumer_lag(self.partition_lag())
        settings = self._settings
        lag = {
            stage: by_topic.get(topic, 0)
            for stage, topic in (
                ("posts", settings.posts_topic),
                ("images", settings.images_topic),
                ("candidates", settings.candidates_topic),
            )
        }
        now = time.time()
        point = self._history.point(now, counts, metrics.ocr_ms.take_step(), lag)
        self.activity.history.append(point)
        self.rates_now = self._every_counter.point(now, dict(totals), [], {})["rates"]

    def keys_activity(self, limit: int = 50) -> list[dict[str, Any]]:
        """Return the active keys with their deliveries here, the latest delivery first."""
        seen = self.activity.keys

        def last_delivery(key: KeyRecord) -> float:
            return seen[key.key_id].last_at if key.key_id in seen else 0.0

        keys = sorted(self._keys.active(), key=last_delivery, reverse=True)[:limit]
        return [
            {
                "key_id": key.key_id,
                "label": key.label,
                "keywords": len(key.keywords),
                "channels": list(key.channels),
                "webhooks": len(key.webhooks),
                "telegram": key.telegram.status if key.telegram else None,
                "deliveries": seen[key.key_id].deliveries if key.key_id in seen else 0,
                "last_delivery_at": last_delivery(key) or None,
            }
            for key in keys
        ]

    def telegram_status(self) -> dict[str, int]:
        """Return how many keys have a Telegram subscription, by its status."""
        counts: dict[str, int] = defaultdict(int)
        for key in self._keys.active():
            if key.telegram is not None:
                counts[key.telegram.status.lower()] += 1
        return dict(counts)

    def address_book_status(self) -> dict[str, Any] | None:
        """Return whether this worker holds the address book and, if so, the last hour's top."""
        books = self._books
        if books is None or not books.enabled:
            return None
        held = _held_here(books)
        # Every worker's copy of which addresses the book holds (a known one skips its hop).
        known = None if self._known is None else self._known.status()
        if not held:
            return {"held_here": held, "known_here": known, "trending_1h": []}
        book = books.book
        return {
            "held_here": held,
            "rebuilding": book.rebuilding,
            "known_here": known,
            # Not while rebuilt: the index is not whole yet.
            "trending_1h": [] if book.rebuilding else book.trending(3600.0, 10),
            # How full it is, and what it forgot: to make room, or unseen too long.
            "addresses": len(book),
            "made_room": book.made_room,
            "forgotten": book.forgotten,
            "over_share": book.over_share,
        }

    def snapshot(self) -> dict[str, Any]:
        """Return everything the status page shows."""
        settings = self._settings
        cache = self._ocr.cache
        similar = self._ocr.similar
        lookups = cache.hits + cache.misses
        by_partition = self.partition_lag()
        return {
            "app_id": settings.app_id,
            "topics": {
                "posts": settings.posts_topic,
                "images": settings.images_topic,
                "ocr_result": settings.ocr_result_topic,
                "ocr_error": settings.ocr_error_topic,
                "dead_letter": settings.dead_letter_topic,
                "control": settings.control_topic,
                "webhooks": settings.webhooks_topic,
            },
            "webhooks": self._webhooks.status(),
            "live_streams": self._live.status(),
            "active_keys": len(self._keys.active()),
            "consumer_lag": consumer_lag(by_partition),
            # Why per partition too: one partition that never drains is a stuck consumer.
            "consumer_lag_by_partition": by_partition,
            "consumer_flow": consumer_flow(self._app.consumer),
            # Why shown: a full /ocr queue or a host holding its download slots explains waits.
            "ocr_engine": {
                "processes": settings.ocr_processes,
                "each": self._ocr.engine,  # runtime, the precision in use, threads
            },
            "ocr_admission": self._ocr.admission.status(),
            "downloads_by_host": dict(sorted(self._ocr.hosts.busy().items())[:20]),
            "cache": {
                "entries": len(cache),
                "hits": cache.hits,
                "hit_rate": round(cache.hits / lookups, 3) if lookups else None,
                # Copies of a picture already read (None: near-duplicates turned off); refused:
                # looked like a copy, but a line read differently in it (read in full).
                "copies": (
                    None
                    if similar is None
                    else {"entries": len(similar), "hits": similar.hits, "refused": similar.refused}
                ),
            },
            **metrics.snapshot(),
            "keys": self.keys_activity(),
            "telegram": self.telegram_status(),
            "address_book": self.address_book_status(),
            # Per second over the last 5 s step, for every counter in "counts".
            "rates": self.rates_now,
            "recent_results": self.activity.recent_results(),
            # Oldest first; one point every 5 s over the last 15 minutes.
            "history": list(self.activity.history),
        }


def _held_here(books: AddressBooks) -> bool | None:
    """Return whether this worker holds the address book (None while no worker does)."""
    try:
        return books.owner() is None
    except KeyError:
        return None


def consumer_flow(consumer: Any) -> dict[str, Any]:
    """Return Faust's flow control state: paused partitions are not fetched until resumed.

    Why shown: a partition that stays paused or "buffered" (its stream queue under pressure)
    while its lag grows is the signature of a stuck consumer rather than a slow one.
    """
    return {
        "flow_active": bool(getattr(consumer, "flow_active", True)),
        "paused": sorted(f"{tp.topic}/{tp.partition}" for tp in consumer._paused_partitions),
        "buffered": sorted(f"{tp.topic}/{tp.partition}" for tp in consumer._buffered_partitions),
        # What Faust asks the fetcher for: assigned, minus paused, minus buffered.
        "fetching": sorted(
            f"{tp.topic}/{tp.partition}" for tp in (consumer._active_partitions or ())
        ),
        "assigned": sorted(f"{tp.topic}/{tp.partition}" for tp in consumer.assignment()),
        "fetcher": fetcher_state(consumer),
    }


def fetcher_state(consumer: Any) -> dict[str, Any]:
    """Return aiokafka's own view of each assigned partition: position, status, paused.

    Why: records aiokafka has fetched (its position moved past them) can still fail to reach
    an agent, as around a rebalance before app/patches/ (see docs/operations.md, Takeover after
    a crash); a position ahead of Faust's progress is where the two views part. Read without
    locks from the consumer's thread, so a figure may be a moment old.
    """
    try:
        kafka_consumer = consumer._thread._ensure_consumer()
        assignment = kafka_consumer._subscription.subscription.assignment
        states = dict(assignment._tp_state)
        # Fetched and not yet handed out: aiokafka fetches a partition again only after.
        held = set(kafka_consumer._fetcher._records)
    except Exception:  # no consumer or no assignment yet (or a Faust/aiokafka change)
        return {}
    return {
        f"{tp.topic}/{tp.partition}": {
            "position": state._position,
            "status": state._status.name,
            "paused": state._paused,
            "holding_fetched_records": tp in held,
        }
        for tp, state in sorted(states.items())
    }


def consumer_lag(by_partition: dict[str, int]) -> dict[str, int]:
    """Return, per topic, the sum of its partitions' lag."""
    lag: dict[str, int] = defaultdict(int)
    for name, records in by_partition.items():
        lag[name.rsplit("/", 1)[0]] += records
    return dict(lag)


def _sum_of(totals: dict[str, int | float], name: str) -> float:
    """Return the sum of a labelled counter over its labels."""
    return sum(value for key, value in totals.items() if key.startswith(f"{name}{{"))
