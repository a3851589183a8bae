"""The worker's services on their own, without a broker: each one's decisions, one at a time.

The real broker runs them end to end in tests/integration/; here the parts Kafka only feeds are
driven directly: the keys replica's changes, the live hub's fan-out and limits, one webhook
delivery against a real loopback endpoint, the stall watch's two-step decision, the rate limiter
on a clock the test moves.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiokafka.structs import ConsumerRecord
from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st

from app.dispatch.service import WebhookDelivery
from app.dispatch.signing import SIGNATURE_HEADER, verify
from app.kafka.outbox import Outbox
from app.kafka.stall_watch import StallWatch
from app.keys.commands import apply_command
from app.keys.replica import KeysReplica
from app.live.feed import Closed, LiveEvent
from app.live.hub import PUBLIC, LiveHub, TooManyStreams, public_view
from app.pipeline.candidates import bundle_values
from app.pipeline.dead_letters import DeadLetters
from app.settings import Settings
from app.web.ratelimit import RateLimiter
from harness.loopback import serve_on_loopback
from models.dead_letter import DeadLetter
from models.delivery_jobs import TelegramMessage, WebhookPost
from models.events import Candidate
from models.keys import AddKeywords, CreateKey, KeyRecord, RevokeKey, SetWebhooks
from tests.strategies import json_values

SETTINGS = Settings(
    broker="127.0.0.1:9",  # nothing listens: no test here may reach Kafka
    stream_max_per_key=2,
    stream_buffer_events=2,
    webhook_max_attempts=3,
    webhook_backoff_base_s=0.01,
    webhook_backoff_max_s=0.02,
    fetch_allow_private=True,
)
SECRET = "whsec_" + "s" * 40


def _key(key_id: str = "abcdef123456", *keywords: str) -> KeyRecord:
    record = apply_command(
        None, CreateKey(key_id=key_id, key_hash="0" * 64, created_at=1.0, channels=("c",))
    )
    if keywords:
        record = apply_command(record, AddKeywords(key_id=key_id, keywords=keywords))
    return record


# --- keys replica ------------------------------------------------------------------------------


async def test_the_replica_applies_changes_and_tells_its_watchers() -> None:
    replica = KeysReplica(SETTINGS)
    seen: list[tuple[str, bool]] = []
    replica.watch(lambda key_id, record: seen.append((key_id, record is not None)))
    first, second = _key("aaaaaaaa1111"), _key("bbbbbbbb2222", "pepe")
    replica.apply(first.key_id, first)
    replica.apply(second.key_id, second)
    replica.apply(first.key_id, apply_command(first, RevokeKey(key_id=first.key_id)))
    assert [r.key_id for r in replica.active()] == ["bbbbbbbb2222"]
    assert {r.key_id for r in replica.all()} == {"aaaaaaaa1111", "bbbbbbbb2222"}
    replica.apply(second.key_id, None)  # a deleted key
    assert replica.get("bbbbbbbb2222") is None
    assert seen == [("aaaaaaaa1111", True), ("bbbbbbbb2222", True), ("aaaaaaaa1111", True),
                    ("bbbbbbbb2222", False)]  # fmt: skip


async def test_the_replica_is_ready_only_once_caught_up() -> None:
    replica = KeysReplica(SETTINGS)
    waiting = asyncio.ensure_future(replica.wait_ready())
    await asyncio.sleep(0)
    assert not waiting.done()
    replica._set_ready()
    await asyncio.wait_for(waiting, 1)


# --- live hub ----------------------------------------------------------------------------------


@pytest.fixture
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[tuple[LiveHub, KeysReplica]]:
    # A test may give the per-connection buffer (indirect parametrization); SETTINGS' by default.
    buffer_events = getattr(request, "param", SETTINGS.stream_buffer_events)
    settings = SETTINGS.model_copy(update={"stream_buffer_events": buffer_events})
    replica = KeysReplica(settings)
    live = LiveHub(settings, replica)
    # Why a task that never ends: the hub starts its Kafka reader when none runs; none may here.
    reader = asyncio.ensure_future(asyncio.Event().wait())
    live._reader = reader  # type: ignore[assignment]
    yield live, replica
    reader.cancel()


def _candidate(text: str) -> bytes:
    event = {"source": "x", "mid": "1", "sid": "2", "link": "", "text": text, "images": []}
    return Candidate(event=event, match_text=text, event_id="post:x:1").model_dump_json().encode()


async def test_the_hub_gives_each_key_what_its_channels_get(
    hub: tuple[LiveHub, KeysReplica],
) -> None:
    live, replica = hub
    for record in (_key("aaaaaaaa1111"), _key("bbbbbbbb2222", "pepe")):
        replica.apply(record.key_id, record)
    async with (
        live.subscription("aaaaaaaa1111") as everything,
        live.subscription("bbbbbbbb2222") as pepe_only,
    ):
        await live._fan_out("0-1", _candidate("gm"))
        await live._fan_out("0-2", _candidate("new $PEPE"))
        await live._fan_out("0-3", b"not a candidate")  # ignored here (the filter dead-letters it)
        events = _events(everything)
        assert [json.loads(e.body)["text"] for e in events] == ["gm", "new $PEPE"]
        assert [e.id for e in events] == ["0-1", "0-2"]  # where each sits in the topic
        [match] = _events(pepe_only)
        assert json.loads(match.body)["keyword_matches"] == ["pepe"]


async def test_the_hub_bounds_streams_per_key_and_drops_for_slow_readers(
    hub: tuple[LiveHub, KeysReplica],
) -> None:
    live, replica = hub
    key = _key("aaaaaaaa1111")
    replica.apply(key.key_id, key)
    async with live.subscription(key.key_id) as feed, live.subscription(key.key_id):
        with pytest.raises(TooManyStreams):
            async with live.subscription(key.key_id):
                pass
        for n in range(5):  # the buffer holds 2
            await live._fan_out(f"0-{n}", _candidate(f"event {n}"))
        assert live.status()["dropped"] == 6  # 3 too many, for each of the 2 streams
        assert feed.take_nowait() is not None
    assert live.status()["keys"] == 0


@pytest.mark.parametrize("hub", [10], indirect=True)
async def test_a_bundle_larger_than_a_feed_reaches_a_client_that_keeps_up(
    hub: tuple[LiveHub, KeysReplica],
) -> None:
    live, replica = hub
    key = _key("aaaaaaaa1111")
    replica.apply(key.key_id, key)
    posts = [Candidate(event={"source": "x", "mid": str(n)}, match_text="gm") for n in range(100)]
    [bundle] = bundle_values(posts)
    async with live.subscription(key.key_id) as fast, live.subscription(key.key_id) as slow:
        seen: list[Any] = []

        async def keep_up() -> None:  # as a connection's writer does, whenever it runs
            while len(seen) < len(posts):
                item = await fast.take(1.0)
                assert isinstance(item, LiveEvent), item
                seen.append(item)

        writer = asyncio.ensure_future(keep_up())
        await live._fan_out("3-7", bundle)
        await asyncio.wait_for(writer, 5)
        assert [e.id for e in seen] == [f"3-7-{n}" for n in range(100)]
        # A client that does not read keeps its bound and learns how many it missed.
        items = _events(slow, closed=True)
        assert len([i for i in items if isinstance(i, LiveEvent)]) == 10


async def test_a_revoked_key_has_its_streams_closed(hub: tuple[LiveHub, KeysReplica]) -> None:
    live, replica = hub
    key = _key("aaaaaaaa1111")
    replica.apply(key.key_id, key)
    async with live.subscription(key.key_id) as feed:
        replica.apply(key.key_id, apply_command(key, RevokeKey(key_id=key.key_id)))
        assert _events(feed, closed=True)[-1] == Closed(1008, "API key revoked")


@pytest.mark.parametrize("hub", [50], indirect=True)
async def test_a_reconnect_gets_the_events_it_missed_and_the_public_stream_a_glimpse(
    hub: tuple[LiveHub, KeysReplica],
) -> None:
    live, replica = hub
    key = _key("aaaaaaaa1111")
    replica.apply(key.key_id, key)
    async with live.subscription(key.key_id), live.subscription(PUBLIC) as public:
        for n in range(8):
            await live._fan_out(f"0-{n}", _candidate(f"event {n} " + "x" * 200))
        [glimpse, *_] = _events(public)
        assert len(json.loads(glimpse.body)["text"]) == 100  # cut for the public
    # The stream dropped; it comes back having seen event 5: it gets 6 and 7, then live.
    async with live.subscription(key.key_id, last_event_id="0-5") as again:
        assert [e.id for e in _events(again)] == ["0-6", "0-7"]
    # An id no longer kept: it gets every kept event (the last 5).
    async with live.subscription(key.key_id, last_event_id="0-0") as late:
        assert [e.id for e in _events(late)] == ["0-3", "0-4", "0-5", "0-6", "0-7"]


async def test_events_while_away_are_kept_until_the_key_stays_away_past_the_linger(
    hub: tuple[LiveHub, KeysReplica],
) -> None:
    live, replica = hub
    key = _key("aaaaaaaa1111")
    replica.apply(key.key_id, key)
    async with live.subscription(key.key_id):
        await live._fan_out("0-1", _candidate("seen"))
    await live._fan_out("0-2", _candidate("while away"))
    async with live.subscription(key.key_id, last_event_id="0-1") as back:
        assert [e.id for e in _events(back)] == ["0-2"]
    live._forget_departed(time.monotonic() + 1)  # as if it stayed away past the linger
    await live._fan_out("0-3", _candidate("nobody is keeping this"))
    async with live.subscription(key.key_id, last_event_id="0-2") as much_later:
        assert _events(much_later) == []


def _events(feed: Any, closed: bool = False) -> list[Any]:
    items = []
    while (item := feed.take_nowait()) is not None:
        items.append(item)
        if isinstance(item, Closed):
            break
    return items if closed else [i for i in items if isinstance(i, LiveEvent)]


# --- one webhook delivery ----------------------------------------------------------------------


class RecordedDeadLetters(DeadLetters):
    """Keeps dead letters in a list instead of publishing them (there is no broker here)."""

    def __init__(self) -> None:
        super().__init__(SETTINGS, Outbox(SETTINGS))
        self.letters: list[DeadLetter] = []

    def report(self, letter: DeadLetter, key: bytes | None) -> asyncio.Future[None]:
        """Record the letter; the returned future is already done."""
        self.letters.append(letter)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[str, list[tuple[int, dict[str, str], bytes]]]]:
    """A webhook receiver that fails the first attempt of /flaky and every attempt of /down."""
    received: list[tuple[int, dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        attempt = int(request.headers["X-Ocrstream-Attempt"])
        received.append((attempt, dict(request.headers), body))
        if request.path == "/down" or (request.path == "/flaky" and attempt == 1):
            return web.Response(status=503)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{path}", handle)
    runner, base = await serve_on_loopback(app)
    yield base, received
    await runner.cleanup()


async def _deliver(url: str) -> tuple[WebhookDelivery, RecordedDeadLetters, Any]:
    replica = KeysReplica(SETTINGS)
    key = apply_command(_key(), SetWebhooks(key_id="abcdef123456", urls=(url,), secret=SECRET))
    replica.apply(key.key_id, key)
    letters = RecordedDeadLetters()
    service = WebhookDelivery(SETTINGS, replica, letters)
    job = WebhookPost(key_id=key.key_id, url=url, event_id="post:x:1", event={"text": "gm"})
    record = ConsumerRecord(
        "webhooks", 0, 7, 0, 0, job.endpoint_id.encode(), job.model_dump_json().encode(),
        None, 0, 0, (),
    )  # fmt: skip
    from app.dispatch.sender import new_webhook_session

    service._session = new_webhook_session(service._limits, 5.0, 4)
    try:
        outcome = await service._deliver(record)
    finally:
        await service._session.close()
    return service, letters, outcome


async def test_a_delivery_is_signed_and_retried_until_accepted(endpoint: Any) -> None:
    base, received = endpoint
    _, letters, outcome = await _deliver(f"{base}/flaky")
    assert outcome is None and letters.letters == []
    assert [attempt for attempt, _, _ in received] == [1, 2]
    _, headers, body = received[-1]
    assert json.loads(body) == {"text": "gm"}
    assert verify(SECRET, headers[SIGNATURE_HEADER], body)
    assert received[0][1]["X-Ocrstream-Delivery"] == headers["X-Ocrstream-Delivery"]


async def test_a_delivery_never_accepted_is_dead_lettered_with_its_attempts(
    endpoint: Any,
) -> None:
    base, received = endpoint
    _, letters, outcome = await _deliver(f"{base}/down")
    assert outcome is not None
    [letter] = letters.letters
    assert (letter.stage, letter.attempts, letter.webhook_url) == ("webhook", 3, f"{base}/down")
    assert "HTTP 503" in letter.reason and len(received) == 3


# --- stall watch -------------------------------------------------------------------------------


def _faust(committed: int, end: int, busy: bool = False) -> Any:
    tp = TP(topic="images", partition=0)
    seeks: list[int] = []

    async def seek(_: Any, offset: int) -> None:
        seeks.append(offset)

    consumer = SimpleNamespace(
        flow_active=True,
        _unacked_messages={"busy"} if busy else set(),
        _paused_partitions=set(),
        assignment=lambda: {tp},
        seek=seek,
    )
    return SimpleNamespace(
        rebalancing=False,
        in_recovery=False,
        consumer=consumer,
        monitor=SimpleNamespace(tp_committed_offsets={tp: committed}, tp_end_offsets={tp: end}),
        tables=SimpleNamespace(changelog_topics=set()),
        seeks=seeks,
    )


async def test_a_partition_is_read_again_only_when_stuck_at_two_checks_in_a_row() -> None:
    app = _faust(committed=5, end=9)
    watch = StallWatch(app)
    await watch.check()
    assert app.seeks == []  # a suspect after one check
    await watch.check()
    assert app.seeks == [5]  # the same offset at the next: read it again


async def test_progress_or_work_in_flight_clears_the_suspicion() -> None:
    app = _faust(committed=5, end=9)
    watch = StallWatch(app)
    await watch.check()
    app.monitor.tp_committed_offsets = dict.fromkeys(app.monitor.tp_committed_offsets, 6)
    await watch.check()
    assert app.seeks == []  # it moved
    busy = _faust(committed=5, end=9, busy=True)
    watch = StallWatch(busy)
    await watch.check()
    await watch.check()
    assert busy.seeks == []  # records under way: not idle, so nothing is judged


# --- rate limiter ------------------------------------------------------------------------------


def test_the_rate_limiter_allows_a_burst_then_the_sustained_rate() -> None:
    limiter = RateLimiter(per_minute=60, burst=3)  # one token a second
    decisions = [limiter.check("k", now=100.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[2].remaining == 0
    assert decisions[3].retry_after_s == pytest.approx(1.0)
    assert decisions[3].reset_s == pytest.approx(3.0)
    assert limiter.check("k", now=100.5).allowed is False  # half a token back
    assert limiter.check("k", now=101.01).allowed is True  # a whole one
    assert limiter.check("other", now=101.01).remaining == 2  # each key has its own bucket
    full = limiter.check("k", now=1000.0)
    assert full.allowed and full.remaining == 2  # never more than the burst


@settings(max_examples=200, deadline=None)
@given(
    event=st.dictionaries(
        st.sampled_from(["source", "text", "ref", "mid", "link", "qr", "buy_ca", "image_url"])
        | st.text(max_size=8),
        json_values(st.sampled_from(["source", "mid", "link", "text", "network", "address"])),
    )
    | st.just({"source": "ocr_result", "text": "x" * 900, "qr": [{"text": "y" * 605}]})
)
def test_the_public_stream_shows_an_allow_list_of_bounded_fields(event: dict[str, Any]) -> None:
    view = public_view(event)
    assert set(view) <= {"source", "mid", "link", "text", "ref", "buy_ca"}  # never a QR code
    assert len(view.get("text", "")) <= 100
    assert len(json.dumps(view)) <= 4_000  # whatever the event holds


async def test_the_status_names_the_destinations_a_queue_waits_on() -> None:
    # Before: "webhook jobs queued 125", and not which destination (Telegram's 1/s pace).
    from app.dispatch.service import _Lane

    service = WebhookDelivery(SETTINGS, KeysReplica(SETTINGS), RecordedDeadLetters())
    chat = TelegramMessage(
        key_id="abcdef123456", event_id="post:x:1", event={"source": "x", "mid": "9"},
        subscription_id="s1", chat_id="-1001",
    )  # fmt: skip
    hook = WebhookPost(
        key_id="abcdef123456", event_id="post:x:1", event={"ref": {"source": "x", "mid": "7"}},
        url="https://discord.com/api/webhooks/1/TOKEN",
    )  # fmt: skip
    for job, queued in ((chat, 120), (hook, 5)):
        lane = _Lane(shown=job.shown, key_id=job.key_id)
        for _ in range(queued):
            lane.queue.put_nowait(None)  # type: ignore[arg-type]  # only counted here
        service._lanes[job.endpoint_id.encode()] = lane
    behind = service.status()["behind"]
    assert [(b["destination"], b["queued"]) for b in behind] == [
        ("telegram:-1001", 120),
        ("webhook discord.com", 5),  # the host only: the path holds Discord's token
    ]
    assert "Telegram's pace" in behind[0]["why"] and "why" not in behind[1]
    assert (chat.post, hook.post) == ("x:9", "x:7")  # what the dashboard's work in flight shows
