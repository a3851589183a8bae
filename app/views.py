"""Web views beside Faust's own: /status/ (JSON), /dashboard (HTML), and the HTTP API."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from app.faust_app import app, settings
from app.keys_replica import keys_replica
from app.live.hub import live_hub
from app.metrics import metrics
from app.ocr_runtime import runtime
from app.prometheus import WorkerCollector, render
from app.web.routes import install_routes
from app.webhooks.service import webhook_delivery

DASHBOARD = (Path(__file__).parent / "web" / "dashboard.html").read_bytes()


def partition_lag() -> dict[str, int]:
    """Return, per ``topic/partition`` this worker consumes, records not yet committed."""
    monitor: Any = app.monitor
    lag: dict[str, int] = {}
    for tp, end in sorted(dict(monitor.tp_end_offsets or {}).items()):
        done = (monitor.tp_committed_offsets or {}).get(tp)
        if done is None:
            read = (monitor.tp_read_offsets or {}).get(tp)
            done = read + 1 if read is not None else end
        lag[f"{tp.topic}/{tp.partition}"] = max(0, end - done)
    return lag


def consumer_flow() -> dict[str, Any]:
    """Return Faust's flow control state: paused partitions are not fetched until resumed.

    Why shown: a partition that stays paused or "buffered" (its stream queue under pressure)
    while its lag grows is the signature of a stuck consumer rather than a slow one.
    """
    consumer: Any = app.consumer
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
    an agent, as around a rebalance before app/faust_fixes.py (see README, Takeover after a
    crash); a position ahead of Faust's progress is where the two views part. Read without
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


def status_snapshot() -> dict[str, Any]:
    """Return everything the status page shows."""
    cache = runtime.cache
    lookups = cache.hits + cache.misses
    by_partition = partition_lag()
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
        "webhooks": webhook_delivery.status(),
        "live_streams": live_hub.status(),
        "active_keys": len(keys_replica.active()),
        "consumer_lag": consumer_lag(by_partition),
        # Why per partition too: one partition that never drains is a stuck consumer, not load.
        "consumer_lag_by_partition": by_partition,
        "consumer_flow": consumer_flow(),
        # Why shown: a full /ocr queue or a host holding its download slots explains waits.
        "ocr_admission": runtime.admission.status(),
        "downloads_by_host": dict(sorted(runtime.hosts.busy().items())[:20]),
        "cache": {
            "entries": len(cache),
            "hits": cache.hits,
            "hit_rate": round(cache.hits / lookups, 3) if lookups else None,
        },
        **metrics.snapshot(),
    }


@app.page("/status/")
async def status(web_: Any, request: Any) -> Any:
    """Return this worker's counters, lag, OCR timings, cache, recent errors and keys."""
    return web_.json(status_snapshot())


async def dashboard(request: web.Request) -> web.Response:
    """Serve the live status page (one self-contained HTML file)."""
    return web.Response(body=DASHBOARD, content_type="text/html")


# Why a registry of our own: the global default one would also export this process's Python
# internals under names that differ per client version; we export what we document.
registry = CollectorRegistry(auto_describe=True)
registry.register(
    WorkerCollector(metrics, lambda: app.monitor, lambda: runtime.cache, partition_lag)
)


async def prometheus_metrics(request: web.Request) -> web.Response:
    """Serve the worker's metrics in Prometheus' text format."""
    return web.Response(body=render(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


# Faust's web driver here is aiohttp (faust.web.drivers.aiohttp); its typed base class does not
# name the aiohttp application it holds.
faust_web: Any = app.web
install_routes(faust_web.web_app, dashboard, prometheus_metrics)
