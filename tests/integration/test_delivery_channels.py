"""Self-service webhooks (JSON, Discord, Slack) and Telegram chat subscriptions, end to end.

Real worker, real broker. Discord, Slack and Telegram cannot be reached from here: they are
the loopback stand-ins of tests/standins.py, which check what the real services check.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from app.dispatch.signing import SIGNATURE_HEADER
from app.kafka.local import LocalKafka
from harness.loopback import serve_on_loopback
from harness.records import consume, post, produce
from harness.standins import DiscordWebhook, SlackWebhook, TelegramBotApi, standin_app
from harness.workers import unique_settings
from tests.support import admin_request, wait_for

pytestmark = pytest.mark.integration

ADMIN = "test-admin-secret"
BOT_TOKEN = "123456:TEST-bot-token-never-logged"


class Services:
    """The three stand-ins on one loopback server."""

    def __init__(self) -> None:
        self.discord = DiscordWebhook()
        self.slack = SlackWebhook()
        self.telegram = TelegramBotApi(BOT_TOKEN, rate_limited={"-100429"}, kicked={"-100403"})
        self.base = ""


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    state = Services()
    runner, state.base = await serve_on_loopback(
        standin_app(state.discord, state.slack, state.telegram), shutdown_timeout_s=0.5
    )
    yield state
    await runner.cleanup()


@pytest.fixture
async def setup(
    kafka: LocalKafka, start_worker: Any, services: Services
) -> AsyncIterator[tuple[Any, Any, Services]]:
    settings = unique_settings(
        kafka,
        admin_key=ADMIN,
        telegram_bot_token=BOT_TOKEN,
        telegram_api_url=services.base,
        telegram_chat_interval_s=0.3,
        telegram_group_interval_s=0.5,
        webhook_backoff_base_s=0.2,
        webhook_backoff_max_s=1.0,
    )
    worker = start_worker(settings)
    base = f"http://127.0.0.1:{settings.web_port}"
    async with aiohttp.ClientSession(base_url=base) as http:
        yield worker, http, services


async def _key(http: Any, label: str, keywords: list[str] | None = None) -> str:
    key: str = (await admin_request(http, ADMIN, "POST", "/admin/keys", label=label))["api_key"]
    if keywords:
        async with http.post(
            "/keywords", json={"keywords": keywords}, headers={"x-api-key": key}
        ) as r:
            assert r.status == 200, await r.text()
    return key


async def _call(http: Any, method: str, path: str, key: str, **body: Any) -> tuple[int, Any]:
    async with http.request(
        method, path, json=body or None, headers={"x-api-key": key}
    ) as response:
        return response.status, await response.json()


async def test_a_key_holder_manages_webhooks_and_gets_json_discord_and_slack_bodies(
    setup: tuple[Any, Any, Services], kafka: LocalKafka
) -> None:
    worker, http, services = setup
    key = await _key(http, "self-service", ["pepe"])
    other = await _key(http, "someone else")
    json_hook = f"{services.base}/hooks/json"

    assert await _call(http, "GET", "/webhooks", key) == (
        200,
        {"data": {"webhooks": []}, "message": "Webhooks retrieved"},
    )
    # The first webhook mints the signing secret, shown in that answer only.
    status, first = await _call(http, "POST", "/webhooks", key, url=json_hook)
    assert status == 201 and first["data"]["webhook_secret"].startswith("whsec_")
    secret = first["data"]["webhook_secret"]
    discord_url = f"{services.base}/api/webhooks/42/discord-token"
    slack_url = f"{services.base}/services/T000/B000/XXXX"
    status, second = await _call(http, "POST", "/webhooks", key, url=discord_url, format="discord")
    assert status == 201 and "webhook_secret" not in second["data"]
    status, third = await _call(http, "POST", "/webhooks", key, url=slack_url, format="slack")
    listed = {hook["url"]: hook for hook in third["data"]["webhooks"]}
    assert {url: hook["format"] for url, hook in listed.items()} == {
        json_hook: "json",
        discord_url: "discord",
        slack_url: "slack",
    }
    # Refusals, each with its reason; another key sees none of these.
    for body, expected in (
        ({"url": "ftp://example.com/x"}, 400),
        ({"url": discord_url, "format": "teams"}, 400),
        ({"url": 7}, 400),
    ):
        status, answer = await _call(http, "POST", "/webhooks", key, **body)
        assert status == expected and answer["error"], (body, answer)
    assert (await _call(http, "GET", "/webhooks", other))[1]["data"]["webhooks"] == []
    status, _ = await _call(http, "DELETE", f"/webhooks/{listed[json_hook]['id']}", other)
    assert status == 404  # not its webhook

    # The JSON webhook is signed; remove it, and only Discord and Slack remain.
    del listed[json_hook]
    status, left = await _call(http, "DELETE", "/webhooks", key, url=json_hook)
    assert status == 200 and {h["url"] for h in left["data"]["webhooks"]} == set(listed)
    assert secret not in str(left)

    started = time.monotonic()
    await produce(
        kafka.bootstrap,
        worker.settings.posts_topic,
        [post("d1", "gm, nothing here", []), post("d2", "$PEPE <b>launch</b> & more", [])],
    )

    async def both_arrived() -> bool:
        return bool(services.discord.received and services.slack.received)

    await wait_for(both_arrived, timeout_s=30)
    [discord] = services.discord.received
    [slack] = services.slack.received
    print(
        f"\nself-service webhooks: Discord {1000 * (discord.at - started):.0f} ms and "
        f"Slack {1000 * (slack.at - started):.0f} ms from produce to arrival"
    )
    embed = discord.body["embeds"][0]
    assert discord.body["content"] == "New X post matching pepe"
    assert embed["description"] == "$PEPE <b>launch</b> & more"
    assert "&lt;b&gt;launch&lt;/b&gt; &amp; more" in slack.body["blocks"][1]["text"]["text"]
    assert SIGNATURE_HEADER not in str(discord.body)
    assert services.discord.refused == [] and services.slack.refused == []


ADMIN_USER = 1001


async def _confirm(http: Any, telegram: TelegramBotApi, key: str, code: str, chat: str) -> None:
    """Have an administrator of the group ``chat`` send the code; wait until it is ACTIVE."""
    telegram.admins.add((chat, ADMIN_USER))
    telegram.send_to_bot(chat, f"/start@{telegram.username} {code}", "supergroup", ADMIN_USER)

    async def active() -> bool:
        answer = (await _call(http, "GET", "/tg_subscription", key))[1]["data"]
        return bool(answer["status"] == "ACTIVE")

    await wait_for(active, timeout_s=30)


def _deliveries(telegram: TelegramBotApi, chat: str) -> list[Any]:
    """Return the deliveries a chat got (HTML), not the bot's plain confirmation of it."""
    return [m for m in telegram.received.get(chat, []) if m.body.get("parse_mode") == "HTML"]


async def test_a_telegram_subscription_gets_matching_posts_waits_out_429_and_stops_on_403(
    setup: tuple[Any, Any, Services], kafka: LocalKafka
) -> None:
    worker, http, services = setup
    telegram = services.telegram
    pepe = await _key(http, "tg", ["pepe"])
    busy = await _key(http, "tg-busy")
    kicked = await _key(http, "tg-kicked")

    assert await _call(http, "GET", "/tg_subscription", pepe) == (
        200,
        {"data": None, "message": "No subscription for this API key"},
    )
    status, created = await _call(
        http, "POST", "/tg_subscription", pepe, chatId=-1001234567890, name="alerts"
    )
    assert status == 201, created
    subscription = created["data"]
    assert {k: subscription[k] for k in ("chatId", "name", "status")} == {
        "chatId": "-1001234567890",
        "name": "alerts",
        "status": "PENDING",
    }
    code = subscription.pop("code")
    assert subscription.pop("link") == f"https://t.me/ocrstream_test_bot?start={code}"
    assert subscription.pop("groupLink") == f"https://t.me/ocrstream_test_bot?startgroup={code}"
    assert (await _call(http, "GET", "/tg_subscription", pepe))[1]["data"] == subscription
    status, refused = await _call(http, "POST", "/tg_subscription", pepe, chatId="not a chat")
    assert status == 400 and "chatId" in refused["error"]
    await _confirm(http, telegram, pepe, code, "-1001234567890")
    for key, chat in ((busy, "-100429"), (kicked, "-100403")):
        status, created = await _call(http, "POST", "/tg_subscription", key, chatId=chat)
        assert status == 201, created
        await _confirm(http, telegram, key, created["data"]["code"], chat)
    subscription = (await _call(http, "GET", "/tg_subscription", pepe))[1]["data"]
    assert subscription["status"] == "ACTIVE" and "expiresAt" not in subscription
    # The bot's replies confirming the three chats: deliveries are counted after them.
    replies = {chat: len(telegram.attempts.get(chat, [])) for chat in ("-100429", "-100403")}
    refused_replies = len(telegram.refused)

    started = time.monotonic()
    posts = [post(f"t{n}", f"gm {n}", []) for n in range(3)]
    posts.insert(1, post("tp", "new $PEPE pair live", []))
    await produce(kafka.bootstrap, worker.settings.posts_topic, posts)

    async def delivered() -> bool:
        return len(_deliveries(telegram, "-1001234567890")) >= 1 and (
            len(_deliveries(telegram, "-100429")) >= 4
        )

    await wait_for(delivered, timeout_s=60)
    # The keyword key's chat got the matching post only, as HTML the Bot API accepts.
    [message] = _deliveries(telegram, "-1001234567890")
    assert message.body["parse_mode"] == "HTML"
    assert message.body["text"].startswith("<b>New X post matching pepe</b>")
    assert "new $PEPE pair live" in message.body["text"]
    latency_ms = 1000 * (message.at - started)

    # The rate-limited chat: every message arrived, in its jobs' order, each after waiting
    # out its retry_after, and never two faster than the chat's pace.
    busy_texts = [m.body["text"] for m in _deliveries(telegram, "-100429")]
    jobs = await consume(kafka.bootstrap, worker.settings.webhooks_topic, count=9, settle_s=0.5)
    queued = [job["event"]["text"] for job in jobs if job["chat_id"] == "-100429"]
    assert len(queued) == 4
    assert [t.rsplit("\n", 1)[-1] for t in busy_texts] == queued
    attempts = telegram.attempts["-100429"][replies["-100429"] :]
    assert len(attempts) == 8  # each message: a 429, then accepted
    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:], strict=False)]
    assert all(gap >= telegram.retry_after_s - 0.1 for gap in gaps[0::2]), gaps
    assert all(gap >= 0.45 for gap in gaps), gaps  # the group pace (0.5 s) holds throughout

    # The chat the bot was removed from: INACTIVE with the reason; no retries for ever.
    async def inactive() -> bool:
        answer = (await _call(http, "GET", "/tg_subscription", kicked))[1]["data"]
        return bool(answer["status"] == "INACTIVE")

    await wait_for(inactive, timeout_s=30)
    answer = (await _call(http, "GET", "/tg_subscription", kicked))[1]["data"]
    assert "bot was kicked" in answer["statusReason"]
    tried = len(telegram.attempts["-100403"]) - replies["-100403"]
    assert tried <= 4  # at most the jobs already in flight, once each
    letters = await consume(kafka.bootstrap, worker.settings.dead_letter_topic, count=1)
    assert letters[0]["stage"] == "webhook" and "INACTIVE" in letters[0]["reason"]
    assert letters[0]["webhook_url"] == "telegram:-100403"

    # Unsubscribe: the answer says so, and the token was never in the worker's log.
    assert await _call(http, "DELETE", "/tg_subscription", pepe) == (
        200,
        {"data": None, "message": "Subscription removed"},
    )
    assert (await _call(http, "DELETE", "/tg_subscription", pepe))[0] == 404
    assert BOT_TOKEN not in worker.log() and BOT_TOKEN.split(":")[1] not in worker.log()
    refused = telegram.refused[refused_replies:]
    assert refused.count("Forbidden: bot was kicked from the group chat") == tried
    assert [r for r in refused if "kicked" not in r] == []
    print(
        f"\ntelegram: produce to message {latency_ms:.0f} ms; a chat under 429s got all "
        f"{len(busy_texts)} in order, median gap "
        f"{statistics.median(gaps):.1f} s"
    )


async def test_a_chat_gets_a_keys_deliveries_only_once_it_has_confirmed_them(
    setup: tuple[Any, Any, Services], kafka: LocalKafka
) -> None:
    worker, http, services = setup
    telegram = services.telegram
    group = "-1009876543210"  # the victim's group; its administrator is ADMIN_USER
    telegram.admins.add((group, ADMIN_USER))
    attacker = await _key(http, "attacker")
    victim = await _key(http, "victim")
    # The attacker names the victim's group: nothing is sent there, whatever the key receives.
    status, created = await _call(http, "POST", "/tg_subscription", attacker, chatId=group)
    assert status == 201 and created["data"]["status"] == "PENDING", created
    attacker_code = created["data"]["code"]
    await produce(kafka.bootstrap, worker.settings.posts_topic, [post("a1", "gm", [])])
    # Codes that must not confirm it: a wrong one; the right one from another chat; the right
    # one typed in the group by a member who is no administrator.
    telegram.send_to_bot(group, "/start " + "x" * 22, "supergroup", ADMIN_USER)
    telegram.send_to_bot("-1000000000001", f"/start {attacker_code}", "supergroup", ADMIN_USER)
    telegram.send_to_bot(group, f"/start {attacker_code}", "supergroup", from_id=5555)
    # The victim subscribes its own group, and its administrator confirms it.
    status, created = await _call(http, "POST", "/tg_subscription", victim, chatId=group)
    assert status == 201, created
    await _confirm(http, telegram, victim, created["data"]["code"], group)
    await produce(kafka.bootstrap, worker.settings.posts_topic, [post("v1", "gm again", [])])

    async def victims_post_arrived() -> bool:
        return any("gm again" in m.body["text"] for m in _deliveries(telegram, group))

    await wait_for(victims_post_arrived, timeout_s=30)
    await asyncio.sleep(1)
    # Only the victim's deliveries reached the group: none of the attacker's, before or after.
    texts = [m.body["text"] for m in _deliveries(telegram, group)]
    assert len(texts) == 1 and "gm again" in texts[0], texts
    answer = (await _call(http, "GET", "/tg_subscription", attacker))[1]["data"]
    assert answer["status"] == "PENDING"
    # And no job for the attacker's pending subscription was ever written: one, the victim's.
    jobs = await consume(kafka.bootstrap, worker.settings.webhooks_topic, count=1, settle_s=1)
    assert len([job for job in jobs if job.get("chat_id") == group]) == 1


async def test_a_posts_link_can_neither_break_a_telegram_message_nor_label_a_slack_link(
    setup: tuple[Any, Any, Services], kafka: LocalKafka
) -> None:
    worker, http, services = setup
    telegram = services.telegram
    key = await _key(http, "links", ["pepe"])
    slack_url = f"{services.base}/services/T000/B000/LINKS"
    assert (await _call(http, "POST", "/webhooks", key, url=slack_url, format="slack"))[0] == 201
    chat = "-1005550001111"
    status, created = await _call(http, "POST", "/tg_subscription", key, chatId=chat)
    assert status == 201, created
    await _confirm(http, telegram, key, created["data"]["code"], chat)

    def with_link(mid: str, link: str) -> bytes:
        return json.dumps({**json.loads(post(mid, f"pepe {mid}", [])), "link": link}).encode()

    await produce(
        kafka.bootstrap,
        worker.settings.posts_topic,
        [
            # A "|" ends a Slack link: the rest would become the label the chat sees.
            with_link("bar", "https://x.com/a|VERIFY-YOUR-WALLET"),
            # 2,048 characters, each "&" escaped to five: cut inside its href, Telegram
            # refused the message (400, can't parse entities) and it never arrived.
            with_link("long", "https://x.com/" + "&" * 2034),
        ],
    )

    async def all_arrived() -> bool:
        return len(_deliveries(telegram, chat)) >= 2 and len(services.slack.received) >= 2

    await wait_for(all_arrived, timeout_s=30)
    assert [r for r in telegram.refused if "parse entities" in r or "too long" in r] == []
    shown = [m.body["text"] for m in _deliveries(telegram, chat)]
    assert any(t.endswith("pepe long") and "href" not in t for t in shown), shown
    titles = [s.body["blocks"][0]["text"]["text"] for s in services.slack.received]
    assert "*<https://x.com/a%7CVERIFY-YOUR-WALLET|New X post matching pepe>*" in titles
    assert all("|VERIFY" not in t for t in titles)
