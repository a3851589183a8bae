"""The error boundary of every request: bodies become models or 400s, failures JSON 500s."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel

from app.metrics import metrics
from app.web.errors import ApiError, error_middleware, parse_body
from app.web.routes import count_responses
from harness.loopback import serve_on_loopback
from models.api import REQUESTS, KeywordsRequest, OcrRequest, SetChannelsRequest, SetWebhooksRequest
from tests.strategies import request_bodies


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=request_bodies())
def test_any_body_is_a_model_or_a_400_with_a_reason(raw: bytes) -> None:
    for model in REQUESTS:
        try:
            body = parse_body(raw, model, empty=b"{}")
        except ApiError as exc:
            assert exc.status == 400 and exc.message
            continue
        # What was accepted can be sent on as JSON and UTF-8 (a lone surrogate never gets in).
        body.model_dump_json().encode()


@pytest.mark.parametrize(
    ("raw", "model", "message"),
    [
        (b"[" * 2000 + b"]" * 2000, KeywordsRequest, "not valid JSON: recursion limit"),
        (b'{"keywords": ["\\ud800"]}', KeywordsRequest, "not valid JSON"),
        (b'{"keywords": "pepe"}', KeywordsRequest, "keywords must be a list"),
        (b'{"channels": "my-topic"}', SetChannelsRequest, "channels must be a list"),
        (b'{"channels": [".."]}', SetChannelsRequest, "not a valid Kafka topic name"),
        (b'{"channels": ["__consumer_offsets"]}', SetChannelsRequest, "reserved"),
        (b"[1, 2]", OcrRequest, "must be a JSON object"),
        (b"", OcrRequest, "must be a JSON object"),
        (b'{"image": 42}', OcrRequest, "image must be a string"),
        (b'{"rotate_secret": "yes", "urls": []}', SetWebhooksRequest, "rotate_secret"),
    ],
)
def test_refusals_say_what_is_wrong(raw: bytes, model: type[BaseModel], message: str) -> None:
    with pytest.raises(ApiError, match=message) as refused:
        parse_body(raw, model)
    assert refused.value.status == 400


async def _broken(request: web.Request) -> web.Response:
    raise RecursionError("maximum recursion depth exceeded")


async def _refused(request: web.Request) -> web.Response:
    raise ApiError(409, "no")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application(middlewares=[count_responses, error_middleware])
    app.router.add_get("/admin/broken", _broken)
    app.router.add_get("/faust-page", _broken)
    app.router.add_get("/admin/refused", _refused)
    runner, base = await serve_on_loopback(app)
    yield base
    await runner.cleanup()


async def test_an_unexpected_error_is_a_counted_json_500_with_a_logged_request_id(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = metrics.totals().get("http_responses{status=500}", 0)
    async with aiohttp.ClientSession() as http:
        for path in ("/admin/broken", "/faust-page"):  # an API path and any other page
            with caplog.at_level(logging.ERROR, logger="app.web.errors"):
                async with http.get(f"{server}{path}") as response:
                    assert response.status == 500
                    assert response.content_type == "application/json"
                    body: dict[str, Any] = await response.json()
            assert body["status"] == "error" and "internal error" in body["error"]
            assert response.headers["X-Request-Id"] == body["request_id"]
            assert body["request_id"] in caplog.text and "RecursionError" in caplog.text
        async with http.get(f"{server}/admin/refused") as response:
            assert response.status == 409
    assert metrics.totals()["http_responses{status=500}"] == before + 2
