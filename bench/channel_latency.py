"""Latency to Discord and Telegram under load, beside the signed-JSON webhook in the same run.

    .venv/bin/python bench/channel_latency.py [--rate 200] [--matches 40] [--write FILE]

Starts a local broker, one worker and the loopback stand-ins of Discord's webhooks and
Telegram's Bot API (tests/standins.py, which check what those services check). Three keys
with the keyword "pepe" deliver to a Discord-format webhook, a Telegram chat (private: one
message a second) and a plain JSON webhook. A firehose key without keywords takes every post
on its channel topic. Background posts flow at ``--rate`` posts/s; every 1.5 s one post
matches "pepe" and carries its produce time. Latency runs from that produce to the arrival at
each stand-in. The baseline is the JSON webhook in the same run: same lanes, our own body.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.kafka.local import LocalKafka  # noqa: E402
from bench.ocr_bench import show  # noqa: E402
from harness.loopback import serve_on_loopback  # noqa: E402
from harness.records import post  # noqa: E402
from harness.standins import DiscordWebhook, TelegramBotApi  # noqa: E402
from harness.workers import Worker, unique_settings  # noqa: E402

ADMIN = "bench-admin"
BOT_TOKEN = "7:bench-token"
CHAT = "555000111"
STAMP = re.compile(r"t=([0-9]+\.[0-9]+)")


class JsonHook:
    """A plain webhook receiver: the arrival time of each stamped event."""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []

    async def handle(self, request: web.Request) -> web.Response:
        """Record the latency the event's text carries; answer 204."""
        arrived = time.time()
        stamp = STAMP.search((await request.json()).get("text", ""))
        if stamp:
            self.latencies_ms.append((arrived - float(stamp.group(1))) * 1000)
        return web.Response(status=204)


class Stamped:
    """Wraps a stand-in's handler to note each stamped body's latency at arrival."""

    def __init__(
        self,
        handler: Callable[[web.Request], Awaitable[web.Response]],
        text_of: Callable[[dict[str, Any]], str],
    ) -> None:
        self._handler = handler
        self._text_of = text_of
        self.latencies_ms: list[float] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Pass the request on to the stand-in; note the latency when it accepted it."""
        arrived = time.time()
        body = await request.json()
        answer = await self._handler(request)
        stamp = STAMP.search(self._text_of(body))
        if stamp and answer.status < 300:
            self.latencies_ms.append((arrived - float(stamp.group(1))) * 1000)
        return answer


async def _call(http: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> Any:
    async with http.request(method, path, **kw) as answer:
        assert answer.status in (200, 201), await answer.text()
        return (await answer.json())["data"]


async def _keys(http: aiohttp.ClientSession, base: str, telegram: TelegramBotApi) -> None:
    admin = {"x-admin-key": ADMIN}
    await _call(http, "POST", "/admin/keys", json={"label": "firehose"}, headers=admin)
    for label in ("discord", "telegram", "json"):
        key = (await _call(http, "POST", "/admin/keys", json={"label": label}, headers=admin))[
            "api_key"
        ]
        own = {"x-api-key": key}
        await _call(http, "POST", "/keywords", json={"keywords": ["pepe"]}, headers=own)
        if label == "discord":
            hook = {"url": f"{base}/api/webhooks/1/bench", "format": "discord"}
            await _call(http, "POST", "/webhooks", json=hook, headers=own)
        elif label == "json":
            await _call(http, "POST", "/webhooks", json={"url": f"{base}/hooks/json"}, headers=own)
        else:
            subscribed = await _call(
                http, "POST", "/tg_subscription", json={"chatId": CHAT}, headers=own
            )
            # The chat confirms it, as its user would by opening the bot's link.
            telegram.send_to_bot(CHAT, f"/start {subscribed['code']}")
            while (await _call(http, "GET", "/tg_subscription", headers=own))["status"] != "ACTIVE":
                await asyncio.sleep(0.2)


async def _load(bootstrap: str, topic: str, rate: float, matches: int) -> int:
    """Produce background posts at ``rate``/s and a stamped "pepe" post every 1.5 s."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    sent = 0
    try:
        started = time.monotonic()
        next_match = started + 1.5
        made = 0
        while made < matches:
            now = time.monotonic()
            due = int((now - started) * rate)
            while sent < due:
                await producer.send(topic, value=post(f"bg{sent}", f"gm {sent}", []))
                sent += 1
            if now >= next_match:
                text = f"$PEPE pair live t={time.time():.6f}"
                await producer.send(topic, value=post(f"m{made}", text, []))
                made += 1
                next_match += 1.5
            await asyncio.sleep(0.01)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def _summary(latencies: list[float]) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    q = statistics.quantiles(ordered, n=100) if len(ordered) > 1 else ordered * 99
    return q[49], q[94], max(ordered)


async def run(args: argparse.Namespace) -> str:
    """Run the load; return the markdown section."""
    discord_standin = DiscordWebhook()
    telegram_standin = TelegramBotApi(BOT_TOKEN)
    discord = Stamped(discord_standin.handle, lambda b: b["embeds"][0]["description"])
    telegram = Stamped(telegram_standin.handle, lambda b: b.get("text", ""))
    json_hook = JsonHook()
    app = web.Application()  # the stand-ins' paths, through the measuring wrappers
    app.router.add_post("/api/webhooks/{id}/{token}", discord.handle)
    app.router.add_post("/bot{token}/{method}", telegram.handle)
    app.router.add_post("/hooks/json", json_hook.handle)
    runner, base = await serve_on_loopback(app, shutdown_timeout_s=0.5)
    with tempfile.TemporaryDirectory() as tmp:
        kafka = LocalKafka(Path(tmp) / "kafka")
        kafka.start()
        settings = unique_settings(
            kafka, admin_key=ADMIN, telegram_bot_token=BOT_TOKEN, telegram_api_url=base
        )
        worker = Worker(settings, Path(tmp))
        worker.start()
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{settings.web_port}") as http:
                await _keys(http, base, telegram_standin)
            started = time.monotonic()
            background = await _load(kafka.bootstrap, settings.posts_topic, args.rate, args.matches)
            elapsed = time.monotonic() - started
            deadline = time.monotonic() + 60
            while (
                time.monotonic() < deadline
                and min(
                    len(discord.latencies_ms),
                    len(telegram.latencies_ms),
                    len(json_hook.latencies_ms),
                )
                < args.matches
            ):
                await asyncio.sleep(0.2)
        finally:
            worker.stop()
            kafka.stop()
    await runner.cleanup()
    rows = []
    base_p50 = _summary(json_hook.latencies_ms)[0]
    for name, latencies in (
        ("JSON webhook (baseline)", json_hook.latencies_ms),
        ("Discord webhook", discord.latencies_ms),
        ("Telegram sendMessage", telegram.latencies_ms),
    ):
        p50, p95, worst = _summary(latencies)
        print(
            f"{name}: {len(latencies)} messages, p50 {p50:.0f} ms, p95 {p95:.0f}, max {worst:.0f}"
        )
        rows.append(
            f"| {name} | {len(latencies)}/{args.matches} | {p50:.0f} ms | {p95:.0f} ms | "
            f"{worst:.0f} ms | {p50 / base_p50:.2f}x |"
        )
    refused = discord_standin.refused + telegram_standin.refused
    return (
        f"Command: `.venv/bin/python bench/channel_latency.py --rate {args.rate:g} --matches "
        f"{args.matches}` (2-core machine, one worker, default settings; stand-ins of Discord "
        "and the Bot API on loopback, tests/standins.py). Under "
        f"{background / elapsed:.0f} background posts/s (every post to a firehose key's channel "
        f'topic), one post in {args.rate * 1.5:.0f} matches "pepe" for three keys; latency '
        "from its produce to its arrival. Refused by the stand-ins: "
        f"{len(refused)}.\n\n"
        "| destination | arrived | p50 | p95 | max | p50 / baseline |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )


def main() -> int:
    """Run the benchmark; print the figures and optionally write them to a markdown file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--matches", type=int, default=40)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    body = asyncio.run(run(args))
    show(body, args.write, "Discord and Telegram latency")
    return 0


if __name__ == "__main__":
    sys.exit(main())
