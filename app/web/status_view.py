"""/status/ (JSON), /dashboard (HTML) and /metrics (Prometheus): what a worker is doing."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from app.web.context import STATUS

DASHBOARD = (Path(__file__).parent / "dashboard.html").read_bytes()


async def status(request: web.Request) -> web.Response:
    """Return this worker's counters, lag, OCR timings, cache, recent errors and keys."""
    return web.json_response(request.app[STATUS].snapshot())


async def dashboard(request: web.Request) -> web.Response:
    """Serve the live status page (one self-contained HTML file)."""
    return web.Response(body=DASHBOARD, content_type="text/html")


async def prometheus_metrics(request: web.Request) -> web.Response:
    """Serve the worker's metrics in Prometheus' text format."""
    body = request.app[STATUS].prometheus_text()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
