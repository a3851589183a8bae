"""The HTTP API over real HTTP against a running worker, real broker and real OCR engine."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from app.kafka.local import LocalKafka
from app.keys.apikeys import split_key
from harness.records import consume, post, produce
from harness.workers import Worker, operator_url, unique_settings
from tests.conftest import DATA
from tests.support import altered, another_picture

pytestmark = pytest.mark.integration

ADMIN = "test-admin-secret"
PEPE_LINES = [
    "$PEPE presale live",
    "LP burned, ownership renounced",
    "CA: 0x979097B35B88A0c32751f9732d5d37c609B3f1Ad",
    "https://pepe-presale.io/claim",
]


@pytest.fixture(scope="module")
def worker(kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    settings = unique_settings(
        kafka,
        admin_key=ADMIN,
        rate_limit_burst=60,
        # A bot, so /tg_subscription is served (its messages go nowhere: port 9 refuses).
        telegram_bot_token="1:fuzz",
        telegram_api_url="http://127.0.0.1:9",
    )
    running = Worker(settings, tmp_path_factory.mktemp("http-worker"))
    running.start()
    yield running
    running.stop()


@pytest.fixture
async def http(worker: Worker) -> AsyncIterator[Any]:
    base = f"http://127.0.0.1:{worker.settings.web_port}"
    async with aiohttp.ClientSession(base_url=base) as session:
        yield session


async def _new_key(http: Any, label: str = "t") -> str:
    async with http.post("/admin/keys", json={"label": label}, headers={"x-admin-key": ADMIN}) as r:
        assert r.status == 201, await r.text()
        body = await r.json()
    assert body["data"]["key_id"] in body["data"]["api_key"]
    return str(body["data"]["api_key"])


async def _ocr(http: Any, key: str | None, **body: Any) -> tuple[int, dict[str, Any], Any]:
    headers = {"x-api-key": key} if key else {}
    async with http.post("/ocr", json=body, headers=headers) as response:
        return response.status, await response.json(), response.headers


def _b64(name: str) -> str:
    return base64.b64encode((DATA / name).read_bytes()).decode()


async def test_ocr_answers_in_the_documented_shape_for_each_input_form(
    http: Any, image_host: str
) -> None:
    key = await _new_key(http)
    # Bytes of their own (a PNG reader ignores what follows IEND): no other test read them.
    unique = (DATA / "s30_promo.png").read_bytes() + os.urandom(16)
    inline = base64.b64encode(unique).decode()
    forms = [
        {"image": f"data:image/png;base64,{inline}"},
        {"image": inline},  # the same bytes again: answered from the OCR cache
        {"imageUrl": f"{image_host}/s30_promo.png"},
    ]
    elapsed = []
    for form in forms:
        status, body, headers = await _ocr(http, key, **form)
        assert status == 200, body
        assert set(body) == {"data", "message"}
        assert body["message"] == "Text extracted successfully"
        data = body["data"]
        assert set(data) == {"text", "lines", "elapsed_ms", "total_ms"}
        assert data["text"] == "\n".join(PEPE_LINES)
        assert [line["text"] for line in data["lines"]] == PEPE_LINES
        assert all(set(line) == {"text", "score"} for line in data["lines"])
        assert 0 <= data["elapsed_ms"] <= data["total_ms"]
        assert int(headers["X-RateLimit-Remaining"]) >= 0
        elapsed.append(data["elapsed_ms"])
    # The first read ran the OCR; the same bytes again ran none (the pipeline's cache).
    assert elapsed[0] > 0 and elapsed[1] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "exactly one of imageUrl or image"),
        ({"imageUrl": "https://a/b.png", "image": "AAAA"}, "exactly one"),
        ({"image": "not*base64!"}, "not valid base64"),
        ({"image": "data:text/plain;base64,aGVsbG8="}, "image type"),
        ({"image": 42}, "must be a string"),
        ({"imageUrl": "ftp://example.com/a.png"}, "http(s)"),
        ({"imageUrl": "file:///etc/passwd"}, "http(s)"),
    ],
)
async def test_bad_requests_are_400_with_a_json_reason(
    http: Any, body: dict[str, Any], message: str
) -> None:
    key = await _new_key(http)
    status, answer, _ = await _ocr(http, key, **body)
    assert status == 400
    assert answer["status"] == "error" and message in answer["error"]


async def test_non_json_body_is_400(http: Any) -> None:
    key = await _new_key(http)
    async with http.post("/ocr", data=b"{nope", headers={"x-api-key": key}) as response:
        assert response.status == 400
        assert "not valid JSON" in (await response.json())["error"]


async def test_paths_and_methods_nothing_serves_answer_json(http: Any) -> None:
    for method, path, status in (
        ("GET", "/no/such/path", 404),
        ("GET", "/ocr", 405),
        ("DELETE", "/stream/token", 405),
    ):
        async with http.request(method, path) as response:
            assert response.status == status
            assert response.content_type == "application/json"
            assert (await response.json())["error"]


async def test_oversized_images_are_413(http: Any, image_host: str) -> None:
    key = await _new_key(http)
    too_big = base64.b64encode(os.urandom(10 * 1024 * 1024 + 3))
    payload = io.BytesIO(b'{"image": "' + too_big + b'"}')  # streamed, as a client should
    headers = {"x-api-key": key, "Content-Type": "application/json"}
    async with http.post("/ocr", data=payload, headers=headers) as response:
        assert response.status == 413
        assert "limit" in (await response.json())["error"]
    status, body, _ = await _ocr(http, key, imageUrl=image_host.replace("/img", "/big.png"))
    assert status == 413 and "limit" in body["error"], body


async def test_not_an_image_is_415(http: Any, image_host: str) -> None:
    key = await _new_key(http)
    html = base64.b64encode(b"<html><body>hi</body></html>").decode()
    status, body, _ = await _ocr(http, key, image=html)
    assert status == 415 and "not an image" in body["error"]
    status, _, _ = await _ocr(http, key, imageUrl=image_host.replace("/img", "/page.html"))
    assert status == 415


async def test_unfetchable_urls_are_422_with_why(http: Any, image_host: str) -> None:
    key = await _new_key(http)
    status, body, _ = await _ocr(http, key, imageUrl=f"{image_host}/missing.png")
    assert status == 422 and "HTTP 404" in body["error"]
    status, body, _ = await _ocr(http, key, imageUrl="http://127.0.0.1:9/a.png")
    assert status == 422 and "could not fetch" in body["error"]


async def test_missing_unknown_and_revoked_keys(http: Any) -> None:
    status, body, _ = await _ocr(http, None, image="AAAA")
    assert status == 401 and "x-api-key" in body["error"]
    # As the product documents: a missing or invalid key is 401; a revoked one 403.
    status, body, _ = await _ocr(http, "osk_aaaaaaaaaaaa_" + "b" * 32, image="AAAA")
    assert status == 401 and body["error"] == "invalid API key"
    status, _, _ = await _ocr(http, "garbage", image="AAAA")
    assert status == 401

    key = await _new_key(http)
    key_id, _ = split_key(key)
    async with http.delete(f"/admin/keys/{key_id}", headers={"x-admin-key": ADMIN}) as r:
        assert r.status == 200 and (await r.json())["data"]["revoked"] is True
    status, body, _ = await _ocr(http, key, image="AAAA")
    assert status == 403 and "revoked" in body["error"]


async def test_rate_limit_answers_429_with_retry_after(http: Any) -> None:
    key = await _new_key(http)
    answers = []
    for _ in range(80):  # the burst is 60; bad requests are cheap and still count
        answers.append(await _ocr(http, key))
    limited = [(body, headers) for status, body, headers in answers if status == 429]
    assert limited, "no request was limited"
    body, headers = limited[0]
    assert body["error"] == "rate limit exceeded" and body["retry_after"] >= 1
    assert headers["Retry-After"] == str(body["retry_after"])
    assert headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Reset"]) >= 1


async def test_keywords_follow_the_rules_and_stay_with_their_key(http: Any) -> None:
    alice, bob = await _new_key(http, "alice"), await _new_key(http, "bob")
    a, b = {"x-api-key": alice}, {"x-api-key": bob}
    async with http.post(
        "/keywords", json={"keywords": [" PEPE ", "Doge", "pepe"]}, headers=a
    ) as r:
        assert r.status == 200
        assert (await r.json())["data"]["keywords"] == ["pepe", "doge"]
    async with http.post("/keywords", json={"keywords": ["wif"]}, headers=a) as r:
        assert (await r.json())["data"]["keywords"] == ["pepe", "doge", "wif"]
    async with http.get("/keywords", headers=b) as r:
        assert (await r.json())["data"]["keywords"] == []  # bob sees only his own
    async with http.delete("/keywords", json={"keywords": ["DOGE"]}, headers=a) as r:
        assert (await r.json())["data"]["keywords"] == ["pepe", "wif"]
    async with http.post("/keywords", json={"keywords": ["x" * 101]}, headers=a) as r:
        assert r.status == 400 and "longer than 100" in (await r.json())["error"]
    many = {"keywords": [f"w{i}" for i in range(99)]}
    async with http.post("/keywords", json=many, headers=a) as r:
        assert r.status == 400 and "at most 100" in (await r.json())["error"]
    async with http.post("/keywords", json={"keywords": "pepe"}, headers=a) as r:
        assert r.status == 400
    async with http.delete("/keywords", json={"all": True}, headers=a) as r:
        assert (await r.json())["data"]["keywords"] == []


async def test_admin_routes_need_the_admin_key(http: Any, worker: Worker) -> None:
    async with http.get("/admin/keys") as r:
        assert r.status == 401
    async with http.get("/admin/keys", headers={"x-admin-key": "wrong"}) as r:
        assert r.status == 403
    key = await _new_key(http, "listed")
    async with http.get("/admin/keys", headers={"x-admin-key": ADMIN}) as r:
        listed = await r.json()
    text = str(listed)
    assert split_key(key)[0] in text
    assert key not in text and "key_hash" not in text  # never the secret, never the hash
    async with http.delete("/admin/keys/nosuchkey00", headers={"x-admin-key": ADMIN}) as r:
        assert r.status == 404
    key_id, _ = split_key(key)
    channels = {"channels": ["alerts-a", "alerts-b"]}
    async with http.put(
        f"/admin/keys/{key_id}/channels", json=channels, headers={"x-admin-key": ADMIN}
    ) as r:
        assert (await r.json())["data"]["channels"] == ["alerts-a", "alerts-b"]
    bad = {"channels": ["no spaces allowed"]}
    async with http.put(
        f"/admin/keys/{key_id}/channels", json=bad, headers={"x-admin-key": ADMIN}
    ) as r:
        assert r.status == 400
    loop = {"channels": [worker.settings.posts_topic]}  # deliveries into the input: refused
    async with http.put(
        f"/admin/keys/{key_id}/channels", json=loop, headers={"x-admin-key": ADMIN}
    ) as r:
        assert r.status == 409 and "pipeline" in (await r.json())["error"]
    async with http.delete(f"/admin/keys/{key_id}", headers={"x-admin-key": ADMIN}) as r:
        assert r.status == 200
    async with http.put(
        f"/admin/keys/{key_id}/channels", json=channels, headers={"x-admin-key": ADMIN}
    ) as r:
        assert r.status == 409 and "revoked" in (await r.json())["error"]


async def test_fifty_parallel_ocr_requests_while_the_stream_flows(
    http: Any, worker: Worker, kafka: LocalKafka, image_host: str
) -> None:
    key = await _new_key(http, "parallel")
    settings = worker.settings
    names = ["s30_promo.png", "s10_sol.jpg", "s02_sol.png", "s00_promo.jpg", "s19_tweet.png"]
    posts = [post(f"p{i}", "flow", [f"{image_host}/{names[i % 5]}?i={i}"]) for i in range(10)]
    streaming = asyncio.ensure_future(produce(kafka.bootstrap, settings.posts_topic, posts))
    png = (DATA / "s30_promo.png").read_bytes()
    busy: list[int] = []

    async def until_read() -> tuple[int, dict[str, Any], Any]:
        # A picture of its own per request, so the OCR cache cannot answer: fifty real reads.
        payload = {"image": base64.b64encode(another_picture(png)).decode()}
        # Past the bounded /ocr queue the worker answers 503 with retry_after (and past the
        # key's rate, 429); a client that waits that long and retries is served.
        while True:
            status, body, headers = await _ocr(http, key, **payload)
            if status not in (429, 503):
                return status, body, headers
            if status == 503:
                busy.append(body["retry_after"])
            assert headers["Retry-After"] == str(body["retry_after"])
            await asyncio.sleep(body["retry_after"])

    answers = await asyncio.gather(*(until_read() for _ in range(50)))
    await streaming
    assert [status for status, _, _ in answers] == [200] * 50
    assert all(body["data"]["text"] == "\n".join(PEPE_LINES) for _, body, _ in answers)
    assert busy and all(seconds >= 1 for seconds in busy)  # the queue stayed bounded
    results = await consume(kafka.bootstrap, settings.ocr_result_topic, count=10, timeout_s=120)
    assert sorted(r["ref"]["mid"] for r in results) == sorted(f"p{i}" for i in range(10))


async def test_property_based_fuzz_finds_no_server_error(http: Any, worker: Worker) -> None:
    """Schemathesis drives every operation from /openapi.json; every answer must match it."""
    key = await _new_key(http, "fuzz")
    base = f"http://127.0.0.1:{worker.settings.web_port}"
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json",
        "-H", f"x-api-key: {key}", "-H", f"x-admin-key: {ADMIN}",
        # Why the conformance checks: an answer (status, type or body) that drifts from the
        # generated spec fails CI.
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance", "--max-examples", "5",
        "--request-timeout", "30", "--seed", "20261124",
        # Why: an event stream never ends by design (tests/integration/test_live_streams.py).
        "--exclude-path", "/stream",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(done.communicate(), timeout=240)
    assert done.returncode == 0, output.decode()[-3000:]


async def test_secrets_never_reach_logs_topics_or_error_messages(
    http: Any, worker: Worker, kafka: LocalKafka
) -> None:
    """Runs last in this module: everything the worker logged and created so far is checked."""
    key = await _new_key(http, "secret-check")
    _, secret = split_key(key)
    answers = [
        await _ocr(http, key),  # neither field
        await _ocr(http, key, image="%%%"),  # bad base64
        await _ocr(http, altered(key), image="AAAA"),  # wrong
    ]
    for _, body, _ in answers:
        assert secret not in json.dumps(body) and "osk_" not in json.dumps(body)
    async with http.get("/admin/keys", headers={"x-admin-key": ADMIN}) as r:
        listing = await r.text()
    assert secret not in listing and "osk_" not in listing  # ids only, never keys or hashes
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    assert not [t for t in topics if secret in t or "osk_" in t or ADMIN in t]
    log = worker.log()
    assert "osk_" not in log and secret not in log and ADMIN not in log


OPERATOR_PAGES = ("/dashboard", "/status/", "/metrics", "/router/", "/table/", "/")


async def test_the_operator_pages_are_not_served_to_key_holders(http: Any, worker: Worker) -> None:
    key = await _new_key(http, "curious")
    for path in OPERATOR_PAGES:
        # On the API's port: not to anyone, nor to a key holder, nor with a wrong admin key.
        for headers in ({}, {"x-api-key": key}, {"x-admin-key": "wrong"}):
            async with http.get(path, headers=headers) as r:
                assert r.status == 403, (path, headers, r.status)
                assert "operator page" in (await r.json())["error"]
        # With the admin key: a header, or a Bearer token as Prometheus sends it.
        for headers in ({"x-admin-key": ADMIN}, {"Authorization": f"Bearer {ADMIN}"}):
            async with http.get(path, headers=headers) as r:
                assert r.status == 200, (path, r.status)
    # On the operator listener (loopback by default): without credentials.
    async with aiohttp.ClientSession(base_url=operator_url(worker.settings)) as operator:
        for path in OPERATOR_PAGES:
            async with operator.get(path) as r:
                assert r.status == 200, (path, r.status)
    async with http.get("/openapi.json") as r:  # the API itself is where it was
        assert r.status == 200
