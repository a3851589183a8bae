"""Web views beside Faust's own: /status/ (JSON), /dashboard (HTML), and the HTTP API."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from aiohttp import web

from app.faust_app import app, settings
from app.keys_replica import keys_replica
from app.metrics import metrics
from app.ocr_runtime import runtime
from app.web.routes import install_routes

DASHBOARD = (Path(__file__).parent / "web" / "dashboard.html").read_bytes()


def consumer_lag() -> dict[str, int]:
    """Return, per topic this worker consumes, records not yet committed (end - committed)."""
    monitor: Any = app.monitor
    lag: dict[str, int] = defaultdict(int)
    for tp, end in dict(monitor.tp_end_offsets or {}).items():
        done = (monitor.tp_committed_offsets or {}).get(tp)
        if done is None:
            read = (monitor.tp_read_offsets or {}).get(tp)
            done = read + 1 if read is not None else end
        lag[tp.topic] += max(0, end - done)
    return dict(lag)


def status_snapshot() -> dict[str, Any]:
    """Return everything the status page shows."""
    cache = runtime.cache
    lookups = cache.hits + cache.misses
    return {
        "app_id": settings.app_id,
        "topics": {
            "posts": settings.posts_topic,
            "images": settings.images_topic,
            "ocr_result": settings.ocr_result_topic,
            "dead_letter": settings.dead_letter_topic,
            "control": settings.control_topic,
        },
        "active_keys": len(keys_replica.active()),
        "consumer_lag": consumer_lag(),
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


# Faust's web driver here is aiohttp (faust.web.drivers.aiohttp); its typed base class does not
# name the aiohttp application it holds.
faust_web: Any = app.web
install_routes(faust_web.web_app, dashboard)
