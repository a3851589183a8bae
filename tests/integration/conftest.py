"""Fixtures for integration tests: a real Kafka broker, a local image host, real workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from app.local_kafka import LocalKafka, free_port
from app.settings import Settings
from tests.conftest import DATA
from tests.support import Worker


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """One real Apache Kafka broker (KRaft) for the whole session, on free loopback ports."""
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


async def _eleven_megabytes_chunked(request: web.Request) -> web.StreamResponse:
    # No Content-Length: only counting while reading can stop it.
    response = web.StreamResponse(headers={"Content-Type": "image/png"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(11 * 16):
        await response.write(b"\x89" * 65536)
    return response


async def _html_page(request: web.Request) -> web.Response:
    return web.Response(text="<html><body>not an image</body></html>", content_type="image/png")


@pytest.fixture(scope="session")
async def image_host() -> AsyncIterator[str]:
    """Serve tests/data over HTTP on loopback; return the base URL."""
    app = web.Application()
    app.router.add_static("/img/", DATA)
    app.router.add_static("/copy/", DATA)  # the same bytes under other URLs
    app.router.add_get("/big.png", _eleven_megabytes_chunked)
    app.router.add_get("/page.html", _html_page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield f"http://127.0.0.1:{port}/img"
    await runner.cleanup()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Any]:
    """Return a function that starts workers; all are stopped after the test."""
    workers: list[Worker] = []

    def start(settings: Settings) -> Worker:
        worker = Worker(settings, tmp_path)
        workers.append(worker)
        worker.start()
        return worker

    yield start
    for worker in workers:
        worker.stop()
