"""The bounded feed of one live-stream connection: what it keeps, drops and reports."""

from __future__ import annotations

import asyncio

from app.live.feed import BoundedFeed, Closed, Dropped, FeedItem, LiveEvent
from app.settings import Settings
from app.web.stream_view import _pump


def _event(name: str) -> LiveEvent:
    return LiveEvent(name, name.encode())


def _drain(feed: BoundedFeed) -> list[FeedItem]:
    items = []
    while (item := feed.take_nowait()) is not None:
        items.append(item)
        if isinstance(item, Closed):
            break
    return items


def test_past_its_bound_the_newest_are_dropped_and_counted_where_the_gap_is() -> None:
    feed = BoundedFeed(limit=3)
    offered = [feed.offer(_event(f"e{n}")) for n in range(6)]
    assert offered == [True, True, True, False, False, False]
    assert feed.take_nowait() == _event("e0")  # one slot frees: the next event goes after a notice
    assert feed.offer(_event("e6"))
    assert _drain(feed) == [_event("e1"), _event("e2"), Dropped(3), _event("e6")]
    assert feed.dropped_total == 3


def test_a_client_that_caught_up_learns_of_the_gap_without_waiting_for_an_event() -> None:
    feed = BoundedFeed(limit=1)
    feed.offer(_event("a"))
    feed.offer(_event("b"))
    assert _drain(feed) == [_event("a"), Dropped(1)]
    assert feed.take_nowait() is None


def test_close_wins_over_queued_events_and_the_first_reason_stays() -> None:
    feed = BoundedFeed(limit=10)
    feed.offer(_event("a"))
    feed.close(Closed(1008, "API key revoked"))
    feed.close(Closed(1001, "worker shutting down"))
    assert feed.take_nowait() == Closed(1008, "API key revoked")
    assert not feed.offer(_event("b"))


def test_take_waits_for_the_next_item_or_times_out() -> None:
    async def scenario() -> tuple[FeedItem | None, FeedItem | None]:
        feed = BoundedFeed(limit=10)
        asyncio.get_running_loop().call_later(0.05, feed.offer, _event("late"))
        arrived = await feed.take(timeout_s=5)
        nothing = await feed.take(timeout_s=0.05)
        return arrived, nothing

    assert asyncio.run(scenario()) == (_event("late"), None)


async def test_a_connection_writes_everything_offered_before_its_next_turn_of_the_loop() -> None:
    # A client that keeps up: the hub offers a slice, then lets the loop turn once; the writer
    # must empty the feed in that turn, or a burst fills a fast client's feed.
    feed = BoundedFeed(limit=50)
    sent: list[str] = []

    async def send_event(event: LiveEvent) -> None:
        sent.append(event.id)  # a socket with room: the write does not wait

    async def send_meta(meta: dict[str, object]) -> None:
        sent.append("meta")

    writer = asyncio.ensure_future(_pump(Settings(), feed, send_event, send_meta))
    try:
        await asyncio.sleep(0)  # the writer waits on its feed
        for burst in range(3):
            for n in range(25):
                assert feed.offer(_event(f"{burst}-{n}"))
            await asyncio.sleep(0)
            assert len(sent) == 25 * (burst + 1)
        feed.close(Closed(1000, "done"))
        assert await asyncio.wait_for(writer, 1) == Closed(1000, "done")
    finally:
        writer.cancel()


def test_the_public_view_shows_an_address_whole_or_not_at_all() -> None:
    from app.live.hub import public_view

    sui = "0x" + "ab" * 32 + "::a_rather_long_module_name::A_RATHER_LONG_COIN_NAME"
    event = {
        "source": "ocr_result",
        "ref": {"source": "x", "mid": "1", "link": "https://x.com/a/status/1"},
        "text": "gm",
        "buy_ca": [
            {"network": "sui", "address": sui, "chain": None},
            {"network": "evm", "address": "0x" + "1" * 40, "chain": "base"},
            {"network": "sui", "address": "0x" + "ab" * 300 + "::m::N"},  # past any real one
        ],
    }
    shown = public_view(event)["buy_ca"]
    # Before: addresses were cut at 80 characters, a Sui coin type into another address.
    assert shown == [
        {"network": "sui", "address": sui},
        {"network": "evm", "address": "0x" + "1" * 40},
    ]
