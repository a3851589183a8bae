"""CORS in a real headless Chromium: a key holder's page on another origin uses the API.

The page is served by the test on two loopback ports: one allowed (OCRSTREAM_CORS_ORIGINS) and
one not. It calls ``POST /stream/token`` with ``x-api-key`` (a preflighted ``fetch``), opens
``/stream?token=`` with an ``EventSource``, and reports each step back to its own server.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from app.kafka.local import LocalKafka, free_port
from harness.records import post, produce
from harness.workers import unique_settings
from tests.support import admin_request, chromium_command, needs_chromium

pytestmark = [pytest.mark.integration, needs_chromium]

ADMIN = "cors-admin"
PAGE = """<!doctype html><meta charset="utf-8"><title>a key holder's page</title><script>
const api = %(api)s, key = %(key)s, presetToken = %(token)s;
const report = (what) => fetch("/report", {method: "POST", body: JSON.stringify(what)});
(async () => {
  let token = presetToken;
  try {
    const headers = {"x-api-key": key};
    const answer = await fetch(api + "/stream/token", {method: "POST", headers});
    const body = await answer.json();
    token = body.data.token;
    await report({step: "token", status: answer.status,
                  remaining: answer.headers.get("X-RateLimit-Remaining")});
  } catch (error) {
    await report({step: "token", error: String(error)});
  }
  const source = new EventSource(api + "/stream?token=" + encodeURIComponent(token));
  source.addEventListener("stream_ready", () => report({step: "ready"}));
  source.onmessage = (message) => report({step: "event", event: JSON.parse(message.data)});
  source.onerror = () => report({step: "error", readyState: source.readyState});
})();
</script>"""


class PageHost:
    """Serves the page on two ports (two origins) and keeps what each page reported."""

    def __init__(self) -> None:
        self.allowed_port, self.stranger_port = free_port(), free_port()
        self.reports: dict[int, list[dict[str, Any]]] = {
            self.allowed_port: [],
            self.stranger_port: [],
        }
        self.page = ""

    def origin(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=self.page, content_type="text/html")

    async def _report(self, request: web.Request) -> web.Response:
        port = request.transport.get_extra_info("sockname")[1] if request.transport else 0
        self.reports[port].append(json.loads(await request.text()))
        return web.Response(status=204)

    def steps(self, port: int) -> list[str]:
        return [report["step"] for report in self.reports[port]]

    async def serve(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_post("/report", self._report)
        runner = web.AppRunner(app)
        await runner.setup()
        for port in (self.allowed_port, self.stranger_port):
            await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner


@pytest.fixture
async def pages() -> AsyncIterator[PageHost]:
    host = PageHost()
    runner = await host.serve()
    yield host
    await runner.cleanup()


async def _until(predicate: Any, timeout_s: float, what: str, pages: PageHost) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what}: {pages.reports}"
        await asyncio.sleep(0.1)


async def test_a_page_on_an_allowed_origin_streams_and_others_are_refused(
    kafka: LocalKafka, start_worker: Any, pages: PageHost, tmp_path: Path
) -> None:
    allowed = pages.origin(pages.allowed_port)
    settings = unique_settings(kafka, admin_key=ADMIN, cors_origins=allowed)
    start_worker(settings)
    api = f"http://127.0.0.1:{settings.web_port}"
    async with aiohttp.ClientSession(base_url=api) as http:
        key = await admin_request(http, ADMIN, "POST", "/admin/keys", label="browser")
        async with http.post("/stream/token", headers={"x-api-key": key["api_key"]}) as answer:
            token = (await answer.json())["data"]["token"]
    # The stranger's page has a valid token already (stolen, or pasted in): still refused.
    pages.page = PAGE % {
        "api": json.dumps(api),
        "key": json.dumps(key["api_key"]),
        "token": json.dumps(token),
    }
    browsers = [
        subprocess.Popen(
            [*chromium_command(tmp_path / f"profile{port}"), "--remote-debugging-port=0", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port, url in (
            (pages.allowed_port, allowed + "/"),
            (pages.stranger_port, pages.origin(pages.stranger_port) + "/"),
        )
    ]
    try:
        await _until(
            lambda: "ready" in pages.steps(pages.allowed_port),
            60,
            "the allowed page's stream",
            pages,
        )
        token_step = pages.reports[pages.allowed_port][0]
        assert token_step == {"step": "token", "status": 200, "remaining": token_step["remaining"]}
        assert token_step["remaining"] is not None  # an exposed header the page may read
        # A post of the key's arrives in the page through the EventSource.
        for attempt in range(30):
            await produce(kafka.bootstrap, settings.posts_topic, [post(f"c{attempt}", "gm", [])])
            if "event" in pages.steps(pages.allowed_port):
                break
            await asyncio.sleep(1)
        await _until(lambda: "event" in pages.steps(pages.allowed_port), 10, "no event", pages)
        event = next(r for r in pages.reports[pages.allowed_port] if r["step"] == "event")
        assert event["event"]["mid"].startswith("c")

        # The page on the other origin: its fetch fails (a TypeError in the page) and its
        # EventSource is closed (readyState 2) without ever being ready.
        await _until(
            lambda: "error" in pages.steps(pages.stranger_port), 30, "the stranger's stream", pages
        )
        stranger = pages.reports[pages.stranger_port]
        assert stranger[0]["step"] == "token" and "TypeError" in stranger[0]["error"]
        assert {"step": "error", "readyState": 2} in stranger
        assert "ready" not in pages.steps(pages.stranger_port)
    finally:
        for browser in browsers:
            browser.kill()
            browser.wait(10)
