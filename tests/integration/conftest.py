"""Fixtures for integration tests: a real Kafka broker, a local image host, real workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from app.kafka.local import LocalKafka, LocalKafkaCluster
from app.settings import Settings
from harness.loopback import serve_on_loopback
from harness.standins import Receiver
from harness.variants import jpeg
from harness.workers import Worker
from tests.conftest import DATA


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """One real Apache Kafka broker (KRaft) for the whole session, on free loopback ports."""
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafkaCluster]:
    """Three real Kafka nodes (KRaft, combined mode), started once, for the cluster tests only."""
    cluster = LocalKafkaCluster(tmp_path_factory.mktemp("kafka-cluster"), brokers=3)
    cluster.start()
    yield cluster
    cluster.stop()


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


async def _reencoded(request: web.Request) -> web.Response:
    """Serve an image of tests/data re-encoded as JPEG quality 80, as a re-post would be."""
    with Image.open(DATA / Path(request.match_info["name"]).name) as image:
        return web.Response(body=jpeg(image, 80), content_type="image/jpeg")


@pytest.fixture(scope="session")
async def image_host() -> AsyncIterator[str]:
    """Serve tests/data over HTTP on loopback; return the base URL."""
    app = web.Application()
    app.router.add_static("/img/", DATA)
    app.router.add_static("/copy/", DATA)  # the same bytes under other URLs
    app.router.add_get("/jpeg80/{name}", _reencoded)  # the same picture, other bytes
    app.router.add_get("/big.png", _eleven_megabytes_chunked)
    app.router.add_get("/page.html", _html_page)
    runner, base = await serve_on_loopback(app)
    yield f"{base}/img"
    await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hook/{name}", state.handle)
    runner, base = await serve_on_loopback(app, shutdown_timeout_s=0.5)
    state.base = f"{base}/hook"
    yield state
    await runner.cleanup()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report on the test item, so fixtures can see if the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def start_worker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Return a function that starts workers; all are stopped after the test.

    When the test fails, the end of each worker's log is printed: a CI failure must say what
    the worker was doing, since the worker is another process and its log is gone afterwards.
    """
    workers: list[Worker] = []

    def start(settings: Settings) -> Worker:
        worker = Worker(settings, tmp_path)
        workers.append(worker)
        worker.start()
        return worker

    yield start
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        for worker in workers:
            worker.stop()
        return
    # The test failed: say what each worker was doing, before stopping it (CI keeps no files).
    reports = [_describe(worker) for worker in workers]
    for worker in workers:
        worker.stop()
    # Printed past pytest's capture: teardown output of a passing teardown is never shown.
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        for number, text in enumerate(reports, 1):
            print(f"\n===== {request.node.name}: worker {number} =====\n{text}")


def _describe(worker: Worker) -> str:
    """Return a worker's recent log, its /status/, and where each of its tasks waits."""
    if worker.process is None:
        return "(not running)\n" + "\n".join(worker.log().splitlines()[-120:])
    before = worker.log()
    status = worker.status()
    worker.dump_tasks()
    dump = worker.log()[len(before) :]
    # Only the frames of the task dump, without their locals: where each task is waiting.
    frames = [line for line in dump.splitlines() if line.startswith(("  File", "Stack for"))]
    return "\n".join(
        [
            "--- log, last 120 lines ---",
            *before.splitlines()[-120:],
            f"--- /status/ ---\n{status}",
            "--- asyncio tasks (frames only) ---",
            *frames,
        ]
    )
