"""A slow record at the head of a partition survives a crash of the worker reading it.

With the OCR agent reading several images at once, records of one partition finish out of
order. Faust committed past a record still being read once the records after it were done
(faust-streaming #606); a kill -9 then lost it: the restarted worker began after it.
app/faust_fixes.py never commits past a record in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from app.kafka.local import LocalKafka
from harness.loopback import serve_on_loopback
from harness.records import consume, post, produce
from harness.workers import unique_settings
from tests.conftest import DATA
from tests.support import dripping_image

pytestmark = pytest.mark.integration

SLOW_S = 12.0


@pytest.fixture(scope="module")
async def host() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_static("/img/", DATA)
    # A byte a second until the fetch times out: the image is in flight all that time.
    app.router.add_get("/slow.png", dripping_image(1.0, total_bytes=120))
    runner, base = await serve_on_loopback(app, shutdown_timeout_s=1.0)
    yield base
    await runner.cleanup()


async def test_a_record_in_flight_is_not_committed_past(
    kafka: LocalKafka, host: str, start_worker: Any
) -> None:
    settings = unique_settings(
        kafka,
        topic_partitions=1,  # every image on one partition: the slow one first
        ocr_concurrency=4,
        fetch_total_timeout_s=SLOW_S,
    )
    worker = start_worker(settings)
    images = [f"{host}/slow.png"] + [f"{host}/img/s30_promo.png?n={n}" for n in range(5)]
    await produce(kafka.bootstrap, settings.posts_topic, [post("head", "gm", images)])

    # The five fast images are read while the slow one is still downloading.
    results = await consume(kafka.bootstrap, settings.ocr_result_topic, count=5, timeout_s=60)
    assert len(results) == 5
    started = time.monotonic()
    await asyncio.sleep(4)  # past Faust's commit interval (2.8 s): it commits what it may
    assert time.monotonic() - started < SLOW_S - 2, "the slow image finished before the kill"
    worker.kill()

    # The restarted worker reads the slow image again and gives it its outcome.
    start_worker(settings)
    errors = await consume(kafka.bootstrap, settings.ocr_error_topic, count=1, timeout_s=60)
    assert [e["image_url"] for e in errors] == [f"{host}/slow.png"]
    assert errors[0]["error"] == "timeout"
