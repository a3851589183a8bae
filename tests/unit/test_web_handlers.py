"""The key and keyword routes over real HTTP, served with collaborators of the test's own.

The handlers take everything from ``web.AppKey``s, so no broker is needed: the keys replica is
fed directly, and commands are applied to it at once (what the control agent does through
Kafka, tested end to end in tests/integration/test_http_api.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from app.fetch import FetchRefusedError, FetchStatusError, FetchTooLargeError
from app.keys.admin import KeyAdmin
from app.keys.commands import apply_command
from app.keys.replica import KeysReplica
from app.ocr.images import BadDimensionsError, ImageError, ImageTooLargeError, UnreadableImageError
from app.ocr.pool import OcrPoolError
from app.sealing import new_secret_key
from app.settings import Settings
from app.web import context
from app.web.errors import ApiError
from app.web.image_input import ImageInputError, ImageInputTooLargeError
from app.web.ocr_view import answer_for
from app.web.ratelimit import RateLimiter
from app.web.routes import install_routes
from harness.loopback import serve_on_loopback
from models.keys import ControlCommand, KeyRecord

ADMIN = "unit-admin"
SETTINGS = Settings(
    broker="127.0.0.1:9", admin_key=ADMIN, rate_limit_burst=50, secret_key=new_secret_key()
)


def _handlers_app(settings: Settings) -> web.Application:
    replica = KeysReplica(settings)

    async def send(command: ControlCommand) -> None:
        replica.apply(command.key_id, apply_command(replica.get(command.key_id), command))

    async def lookup(key_id: str) -> KeyRecord | None:
        return replica.get(key_id)

    app = web.Application()
    app[context.SETTINGS] = settings
    app[context.KEYS] = replica
    app[context.KEY_ADMIN] = KeyAdmin(settings, send, lookup, wait_s=1.0, poll_s=0.01)
    app[context.LIMITER] = RateLimiter(settings.rate_limit_per_minute, burst=50)
    install_routes(app)
    return app


@pytest.fixture
async def api() -> AsyncIterator[aiohttp.ClientSession]:
    runner, base = await serve_on_loopback(_handlers_app(SETTINGS))
    async with aiohttp.ClientSession(base_url=base) as session:
        yield session
    await runner.cleanup()


async def _call(
    api: aiohttp.ClientSession, method: str, path: str, headers: dict[str, str], **json: Any
) -> tuple[int, dict[str, Any]]:
    async with api.request(method, path, json=json or None, headers=headers) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def _new_key(api: aiohttp.ClientSession, **body: Any) -> dict[str, Any]:
    status, answer = await _call(api, "POST", "/admin/keys", {"x-admin-key": ADMIN}, **body)
    assert status == 201, answer
    data: dict[str, Any] = answer["data"]
    return data


async def test_a_key_manages_its_own_keywords(api: aiohttp.ClientSession) -> None:
    key = {"x-api-key": (await _new_key(api))["api_key"]}
    status, answer = await _call(api, "POST", "/keywords", key, keywords=[" PEPE ", "Doge", "pepe"])
    assert (status, answer["data"]["keywords"]) == (200, ["pepe", "doge"])
    status, answer = await _call(api, "DELETE", "/keywords", key, keywords=["DOGE"])
    assert answer["data"]["keywords"] == ["pepe"]
    status, answer = await _call(api, "POST", "/keywords", key, keywords=["x" * 101])
    assert status == 400 and "longer than 100" in answer["error"]
    status, answer = await _call(
        api, "POST", "/keywords", key, keywords=[f"w{i}" for i in range(100)]
    )
    assert status == 400 and "at most 100" in answer["error"]
    status, answer = await _call(api, "DELETE", "/keywords", key, all=True)
    assert answer["data"]["keywords"] == []
    assert answer["message"] == "Keywords removed"


async def test_who_is_calling_decides_401_or_403(api: aiohttp.ClientSession) -> None:
    assert (await _call(api, "GET", "/keywords", {}))[0] == 401
    assert (await _call(api, "GET", "/keywords", {"x-api-key": "garbage"}))[0] == 401
    created = await _new_key(api)
    status, _ = await _call(
        api, "DELETE", f"/admin/keys/{created['key_id']}", {"x-admin-key": ADMIN}
    )
    assert status == 200
    status, answer = await _call(api, "GET", "/keywords", {"x-api-key": created["api_key"]})
    assert status == 403 and "revoked" in answer["error"]
    assert (await _call(api, "GET", "/admin/keys", {"x-admin-key": "wrong"}))[0] == 403


async def test_admin_routes_refuse_what_kafka_or_the_pipeline_would(
    api: aiohttp.ClientSession,
) -> None:
    admin = {"x-admin-key": ADMIN}
    created = await _new_key(api, label="bot", channels=["alerts-a"])
    assert created["channels"] == ["alerts-a"] and "key_hash" not in created
    path = f"/admin/keys/{created['key_id']}/channels"
    for bad in ([".."], ["__consumer_offsets"], "alerts", ["a b"]):
        status, answer = await _call(api, "PUT", path, admin, channels=bad)
        assert status == 400, (bad, answer)
    status, answer = await _call(api, "PUT", path, admin, channels=[SETTINGS.posts_topic])
    assert status == 409 and "pipeline" in answer["error"]
    assert (await _call(api, "PUT", "/admin/keys/nosuchkey00/channels", admin, channels=["a"]))[
        0
    ] == 404
    status, listed = await _call(api, "GET", "/admin/keys", admin)
    assert "api_key" not in str(listed) and created["api_key"] not in str(listed)


async def test_past_its_burst_a_key_gets_429_with_retry_after(api: aiohttp.ClientSession) -> None:
    key = {"x-api-key": (await _new_key(api))["api_key"]}
    answers = [await _call(api, "GET", "/keywords", key) for _ in range(51)]
    status, answer = answers[-1]
    assert [s for s, _ in answers[:50]] == [200] * 50
    assert status == 429 and answer["retry_after"] >= 1


PAGE = "http://page.example:8765"


@pytest.fixture
async def cors_api() -> AsyncIterator[aiohttp.ClientSession]:
    settings = SETTINGS.model_copy(update={"cors_origins": f"{PAGE}, https://other.example"})
    runner, base = await serve_on_loopback(_handlers_app(settings))
    async with aiohttp.ClientSession(base_url=base) as session:
        yield session
    await runner.cleanup()


async def test_a_page_on_an_allowed_origin_may_call_the_key_holders_api(
    cors_api: aiohttp.ClientSession,
) -> None:
    key = {"x-api-key": (await _new_key(cors_api))["api_key"]}
    preflight = {
        "Origin": PAGE,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type",
    }
    async with cors_api.options("/keywords", headers=preflight) as answer:
        assert answer.status == 200
        assert answer.headers["Access-Control-Allow-Origin"] == PAGE
        allowed = answer.headers["Access-Control-Allow-Headers"].lower()
        assert "x-api-key" in allowed and "content-type" in allowed
        assert "POST" in answer.headers["Access-Control-Allow-Methods"]
        assert int(answer.headers["Access-Control-Max-Age"]) > 0
    async with cors_api.options(
        "/stream/token", headers={**preflight, "Origin": "https://other.example"}
    ) as answer:
        assert answer.headers["Access-Control-Allow-Origin"] == "https://other.example"
    async with cors_api.post(
        "/keywords", json={"keywords": ["pepe"]}, headers={**key, "Origin": PAGE}
    ) as answer:
        assert answer.status == 200
        assert answer.headers["Access-Control-Allow-Origin"] == PAGE
        assert "X-RateLimit-Remaining" in answer.headers["Access-Control-Expose-Headers"]
    # An error answer is readable by the page too (a browser hides one without the header).
    async with cors_api.get("/keywords", headers={"Origin": PAGE}) as answer:
        assert answer.status == 401 and answer.headers["Access-Control-Allow-Origin"] == PAGE


async def test_other_origins_and_the_admin_routes_are_refused(
    cors_api: aiohttp.ClientSession, api: aiohttp.ClientSession
) -> None:
    key = {"x-api-key": (await _new_key(cors_api))["api_key"]}
    stranger = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    async with cors_api.options("/keywords", headers=stranger) as answer:
        assert answer.status == 403 and "Access-Control-Allow-Origin" not in answer.headers
        assert "OCRSTREAM_CORS_ORIGINS" in (await answer.json())["error"]
    async with cors_api.get("/keywords", headers={**key, "Origin": "http://evil.example"}) as a:
        assert a.status == 403 and "Access-Control-Allow-Origin" not in a.headers
    # The admin routes never answer a preflight, whatever the origin.
    admin_preflight = {"Origin": PAGE, "Access-Control-Request-Method": "POST"}
    async with cors_api.options("/admin/keys", headers=admin_preflight) as answer:
        assert answer.status == 405 and "Access-Control-Allow-Origin" not in answer.headers
    # Without the setting no origin is allowed, but a page of the server's own origin is.
    status, _ = await _call(api, "GET", "/keywords", {**key, "Origin": PAGE})
    assert status == 403
    async with api.get("/keywords", headers={**key, "Origin": str(api._base_url)}) as answer:
        assert answer.status in {200, 401}  # not refused for its origin (the key is cors_api's)
    # A client that is not a browser sends no Origin, and CORS does not concern it.
    assert (await _call(cors_api, "GET", "/keywords", key))[0] == 200


def test_the_setting_takes_only_origins() -> None:
    for bad in ("http://a.example/", "a.example", "http://a.example/path", "ftp://a.example"):
        with pytest.raises(ValueError, match="OCRSTREAM_CORS_ORIGINS"):
            Settings(cors_origins=bad)
    assert Settings(cors_origins="HTTP://A.example:3000, *").cors_origin_set == {
        "http://a.example:3000",
        "*",
    }


async def test_a_webhook_whose_host_resolves_to_loopback_is_refused_when_registered(
    api: aiohttp.ClientSession,
) -> None:
    # Before: 201 and a secret, then every delivery dead-lettered ("resolves to a non-public
    # address"). Now refused at once, naming the setting that would allow it.
    key = {"x-api-key": (await _new_key(api))["api_key"]}
    status, answer = await _call(api, "POST", "/webhooks", key, url="http://localhost:8801/hook")
    assert status == 409, answer
    assert "localhost resolves to a non-public address" in answer["error"]
    assert "OCRSTREAM_FETCH_ALLOWED_NETWORKS" in answer["error"]
    status, answer = await _call(api, "POST", "/webhooks", key, url="http://127.0.0.1:8801/h")
    assert status == 409 and "not a public address" in answer["error"]
    status, listed = await _call(api, "GET", "/webhooks", key)
    assert status == 200 and listed["data"]["webhooks"] == []


async def test_an_allowed_network_lets_a_named_internal_webhook_register() -> None:
    settings = SETTINGS.model_copy(update={"fetch_allowed_networks": "127.0.0.0/8"})
    runner, base = await serve_on_loopback(_handlers_app(settings))
    try:
        async with aiohttp.ClientSession(base_url=base) as api:
            key = {"x-api-key": (await _new_key(api))["api_key"]}
            url = "http://localhost:8801/hook"
            status, answer = await _call(api, "POST", "/webhooks", key, url=url)
            assert status == 201, answer
            assert answer["data"]["webhook_secret"].startswith("whsec_")
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("failure", "status", "says"),
    [
        (ImageInputTooLargeError("over 10 MB"), 413, "over 10 MB"),
        (ImageInputError("not valid base64"), 400, "not valid base64"),
        (FetchTooLargeError("image is over"), 413, "image is over"),
        (FetchRefusedError("10.0.0.1 is not public"), 422, "refused to fetch imageUrl: 10.0"),
        (FetchStatusError("HTTP 404 from image host"), 422, "could not fetch imageUrl: HTTP 404"),
        (ImageTooLargeError("41 MP"), 413, "41 MP"),
        (BadDimensionsError("1 x 20000"), 422, "the image cannot be read: 1 x"),
        (UnreadableImageError("truncated"), 422, "the image cannot be read: truncated"),
        (ImageError("svg"), 415, "not an image we can read: svg"),
        (OcrPoolError("died"), 503, "died"),
    ],
)
def test_each_failure_of_ocr_has_one_answer_in_the_table(
    failure: Exception, status: int, says: str
) -> None:
    answer = answer_for(failure, {})
    assert isinstance(answer, ApiError)
    assert (answer.status, answer.message.startswith(says)) == (status, True), answer.message
    if status == 503:
        assert answer.extra["retry_after"] >= 1 and answer.headers["Retry-After"]
    bug = RuntimeError("a bug")
    assert answer_for(bug, {}) is bug  # not in the table: the boundary's 500


async def test_the_book_answers_503_while_it_is_rebuilt_after_a_takeover() -> None:
    from app.pipeline.address_book import AddressBook, AddressBooks, BookTable

    tables = [BookTable({}, name) for name in ("first", "windows", "authors")]
    book = AddressBook(tables[0], tables[1], tables[2])
    app = _handlers_app(SETTINGS)
    app[context.ADDRESSES] = AddressBooks(book, lambda: None)  # held here
    runner, base = await serve_on_loopback(app)
    try:
        async with aiohttp.ClientSession(base_url=base) as api:
            key = (await _new_key(api))["api_key"]
            under_way = asyncio.get_running_loop().create_future()
            book._rebuilding = under_way  # a rebuild under way, as after a takeover
            status, answer = await _call(api, "GET", "/trending", {"x-api-key": key})
            assert status == 503 and answer["retry_after"] >= 1, answer
            assert "rebuilt" in answer["error"]
            under_way.set_result(None)
            status, answer = await _call(api, "GET", "/trending", {"x-api-key": key})
            assert status == 200 and answer["data"]["addresses"] == []
    finally:
        await runner.cleanup()
