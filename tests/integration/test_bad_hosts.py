"""Image hosts that misbehave, for real, on loopback: each image yields a clear ocr_error event
and the stream keeps flowing for the other posts meanwhile."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from PIL import Image

from app.kafka.consumers import stop_consumer
from app.kafka.local import LocalKafka
from harness.loopback import serve_on_loopback
from harness.records import post, produce
from harness.workers import unique_settings
from tests.conftest import DATA
from tests.support import dripping_image

pytestmark = pytest.mark.integration

PNG = (DATA / "s30_promo.png").read_bytes()
GOOD_IMAGES = ["s10_sol.jpg", "s02_sol.png", "s00_promo.jpg", "s19_tweet.png"]
# A slow host may hold an image this long; the good images must not wait for it.
TOTAL_TIMEOUT_S = 10.0


def _bomb() -> bytes:
    # 20000 x 20000 of one colour: a few hundred KB on the wire, 400 MP once decoded.
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, format="PNG")
    return buffer.getvalue()


async def _stall(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "image/png"})
    await response.prepare(request)
    await asyncio.sleep(300)
    return response


async def _lying_length(request: web.Request) -> web.StreamResponse:
    # Promises 50,000 bytes, sends 100, hangs up.
    response = web.StreamResponse(headers={"Content-Type": "image/png"})
    response.content_length = 50_000
    await response.prepare(request)
    await response.write(PNG[:100])
    assert request.transport is not None
    request.transport.close()
    return response


async def _declared_huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "image/png"})
    response.content_length = 20_000_000
    await response.prepare(request)
    await response.write(PNG[:1000])
    await asyncio.sleep(30)
    return response


async def _chunked_huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "image/png"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(11 * 16):
        await response.write(b"\x89" * 65536)
    return response


def _static(body: bytes, content_type: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type)

    return handler


def _redirect(location: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        raise web.HTTPFound(location)

    return handler


def _status(code: int) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=code, text="no")

    return handler


# path -> (expected error kind, words the reason must hold); None: an ocr_result is expected.
CASES: dict[str, tuple[str, str] | None] = {
    "/drip": ("timeout", "timed out"),
    "/stall": ("timeout", "timed out"),
    "/404": ("http_status", "HTTP 404"),
    "/500": ("http_status", "HTTP 500"),
    "/loop": ("too_many_redirects", "more than 5 redirects"),
    "/to-metadata": ("refused", "169.254.169.254 is not a public address"),
    "/to-private": ("refused", "10.1.2.3 is not a public address"),
    "/lying-length": ("fetch_failed", "cannot fetch the image"),
    "/declared-huge": ("too_large", "20,000,000 bytes, over the 10,485,760 limit"),
    "/chunked-huge": ("too_large", "over the 10,485,760 byte limit"),
    "/truncated.png": ("corrupt_image", "corrupt or truncated"),
    "/bomb.png": ("too_many_pixels", "400,000,000 pixels"),
    "/zero": ("not_an_image", "zero bytes"),
    "/page.html": ("not_an_image", "not a supported image format"),
    "/logo.svg": ("not_an_image", "not a supported image format"),
    "/mislabelled": None,  # a real PNG sent as text/plain: the bytes decide, not the label
}


@pytest.fixture(scope="module")
async def bad_host() -> AsyncIterator[str]:
    """Serve one misbehaving route per case, plus the good images under /img/."""
    app = web.Application()
    router = app.router
    router.add_static("/img/", DATA)
    router.add_get("/drip", dripping_image(0.5))
    router.add_get("/stall", _stall)
    router.add_get("/404", _status(404))
    router.add_get("/500", _status(500))
    router.add_get("/loop", _redirect("/loop"))
    router.add_get("/to-metadata", _redirect("http://169.254.169.254/latest/meta-data/"))
    router.add_get("/to-private", _redirect("http://10.1.2.3/a.png"))
    router.add_get("/lying-length", _lying_length)
    router.add_get("/declared-huge", _declared_huge)
    router.add_get("/chunked-huge", _chunked_huge)
    router.add_get("/truncated.png", _static(PNG[:2000], "image/png"))
    router.add_get("/bomb.png", _static(_bomb(), "image/png"))
    router.add_get("/zero", _static(b"", "image/png"))
    router.add_get("/page.html", _static(b"<html><body>gone</body></html>", "text/html"))
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><text y="20">0xabc</text></svg>'
    router.add_get("/logo.svg", _static(svg, "image/svg+xml"))
    router.add_get("/mislabelled", _static(PNG, "text/plain"))
    # Why a short shutdown: the stalling handlers would otherwise hold cleanup for a minute.
    runner, base = await serve_on_loopback(app, shutdown_timeout_s=1.0)
    yield base
    await runner.cleanup()


async def _read_all(
    bootstrap: str, topics: list[str], want: int, timeout_s: float
) -> list[tuple[str, int, dict[str, Any]]]:
    """Read (topic, broker timestamp ms, JSON value) from ``topics`` until ``want`` arrived."""
    import json

    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[tuple[str, int, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                records.extend((m.topic, m.timestamp, json.loads(m.value)) for m in messages)
    finally:
        await stop_consumer(consumer)
    return records


async def test_misbehaving_hosts_yield_error_events_while_the_stream_flows(
    kafka: LocalKafka, bad_host: str, start_worker: Any
) -> None:
    settings = unique_settings(
        kafka,
        fetch_allow_private=False,  # the real rule: only the test host's network is opened
        fetch_allowed_networks="127.0.0.0/8",
        fetch_total_timeout_s=TOTAL_TIMEOUT_S,
        fetch_connect_timeout_s=5.0,  # reads may idle twice this: the stall lasts 10 s too
        ocr_concurrency=6,
    )
    start_worker(settings)
    bad_posts = [post(f"bad{i}", "x", [f"{bad_host}{path}"]) for i, path in enumerate(CASES)]
    good_posts = [
        post(f"good{i}", "fine", [f"{bad_host}/img/{name}"]) for i, name in enumerate(GOOD_IMAGES)
    ]
    await produce(kafka.bootstrap, settings.posts_topic, [*bad_posts, *good_posts])

    want = len(CASES) + len(GOOD_IMAGES)
    records = await _read_all(
        kafka.bootstrap, [settings.ocr_result_topic, settings.ocr_error_topic], want, 180
    )
    by_url = {value["image_url"]: (topic, at, value) for topic, at, value in records}
    assert len(records) == want, sorted(by_url)  # one event per image, no more, no fewer

    for path, expected in CASES.items():
        topic, _, event = by_url[f"{bad_host}{path}"]
        if expected is None:
            assert topic == settings.ocr_result_topic, event
            assert "$PEPE presale live" in event["text"]
            continue
        kind, words = expected
        assert topic == settings.ocr_error_topic, (path, event)
        assert set(event) == {"source", "image_url", "ref", "error", "reason"}
        assert event["source"] == "ocr_error"
        assert event["ref"]["mid"].startswith("bad")
        assert (event["error"], words in event["reason"]) == (kind, True), (path, event)

    # The slow hosts held two images for seconds; the good ones, queued behind every bad one,
    # were read meanwhile: all of their results were written before either timeout fired.
    slow_done = min(by_url[f"{bad_host}{path}"][1] for path in ("/drip", "/stall"))
    good_done = max(by_url[f"{bad_host}/img/{name}"][1] for name in GOOD_IMAGES)
    assert all(by_url[f"{bad_host}/img/{n}"][0] == settings.ocr_result_topic for n in GOOD_IMAGES)
    assert good_done < slow_done, f"good images done {good_done - slow_done} ms after the slow"
