"""/status/ (JSON), /dashboard (HTML) and /metrics (Prometheus): what a worker is doing."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from app.samples import CONTENT_TYPES, sample_bytes
from app.web.context import SETTINGS, STATUS

DASHBOARD = (Path(__file__).parent / "dashboard.html").read_bytes()


async def status(request: web.Request) -> web.Response:
    """Return this worker's counters, lag, OCR timings, cache, recent errors and keys.

    ``?pretty`` indents it for reading in a browser.
    """
    snapshot = request.app[STATUS].snapshot()
    if "pretty" in request.query:
        return web.Response(text=json.dumps(snapshot, indent=2), content_type="application/json")
    return web.json_response(snapshot)


async def thumbnail(request: web.Request) -> web.Response:
    """Serve the image of a recent result from memory (never fetched again)."""
    try:
        result_id = int(request.match_info["result_id"])
    except ValueError:
        raise web.HTTPNotFound(reason="no such result") from None
    found = request.app[STATUS].activity.thumbnail(result_id)
    if found is None:
        raise web.HTTPNotFound(reason="not among the recent results (or not kept)")
    data, content_type = found
    # Why these headers: the bytes come from anywhere; a browser must take them as an image
    # of that type and nothing else.
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=600",
    }
    return web.Response(body=data, content_type=content_type, headers=headers)


async def dashboard(request: web.Request) -> web.Response:
    """Serve the live status page (one self-contained HTML file)."""
    return web.Response(body=DASHBOARD, content_type="text/html")


async def prometheus_metrics(request: web.Request) -> web.Response:
    """Serve the worker's metrics in Prometheus' text format."""
    body = request.app[STATUS].prometheus_text()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def sample_image(request: web.Request) -> web.Response:
    """Serve a bundled sample image (only with OCRSTREAM_SERVE_SAMPLES)."""
    name = request.match_info["name"]
    data = sample_bytes(name) if request.app[SETTINGS].serve_samples else None
    if data is None:
        raise web.HTTPNotFound(reason=f"no sample named {name!r}")
    content_type = CONTENT_TYPES[name.rsplit(".", 1)[-1]]
    return web.Response(body=data, content_type=content_type)
