"""The address book's rules on plain dicts: first sightings, distinct posts per window, expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from app.pipeline.address_book import (
    KEEP_S,
    MAX_POSTS_REMEMBERED,
    WINDOW_S,
    AddressBook,
    BookTable,
    window_start,
)
from app.pipeline.sightings import posted_at
from models.events import Ref
from models.sightings import Sighting

NOW = 1_800_000_000.0
PEPE = "0x6982508145454Ce325dDbE47a25d4ec3d2311933"


def _book(**bounds: float) -> tuple[AddressBook, list[float]]:
    clock = [NOW]
    return AddressBook(*_tables(), clock=lambda: clock[0], **bounds), clock  # type: ignore[arg-type]


def _tables(*stores: dict[bytes, bytes]) -> tuple[BookTable, BookTable, BookTable]:
    first, windows, authors = stores or ({}, {}, {})
    return BookTable(first, "first"), BookTable(windows, "windows"), BookTable(authors, "authors")


def _seen(
    mid: str, at: float, address: str = PEPE, image: str | None = None, author: str = "a"
) -> Sighting:
    ref = Ref(source="x", mid=mid, sid=author, link=f"https://x.com/{author}/status/{mid}")
    event_id = f"ocr:{mid}:{image}" if image else f"post:x:{mid}"
    return Sighting(
        network="evm", address=address, post=f"x:{author}:{mid}", ref=ref, at=at,
        event_id=event_id, image_url=image,
    )  # fmt: skip


def test_the_first_post_is_the_first_sighting_and_each_post_counts_once_per_window() -> None:
    book, _ = _book()
    assert book.record(_seen("1", NOW - 100)) is True
    assert book.record(_seen("1", NOW - 100, image="https://a/1.png")) is False  # same post
    # The same record again (at least once) is still the first: its delivery says the same.
    assert book.record(_seen("1", NOW - 100)) is True
    assert book.record(_seen("2", NOW - 90)) is False
    assert book.record(_seen("2", NOW + 900)) is False  # sent again later: still one post
    found = book.lookup("evm", PEPE)
    assert found is not None
    assert found["first_seen"]["ref"]["mid"] == "1" and found["first_seen"]["at"] == NOW - 100
    assert found["windows"] == [{"start": window_start(NOW - 100), "posts": 2}]
    # A post read late (a slow image) that was posted earlier becomes the first sighting.
    book.record(_seen("0", NOW - 200))
    again = book.lookup("evm", PEPE)
    assert again is not None and again["first_seen"]["ref"]["mid"] == "0"
    assert book.lookup("evm", "0x" + "0" * 40) is None


def test_windows_are_kept_a_day_then_deleted_and_trending_ranks_by_posts() -> None:
    book, clock = _book()
    other = "So11111111111111111111111111111111111111112"
    for i in range(3):
        book.record(_seen(f"p{i}", NOW - 60))
    book.record(_seen("o1", NOW - 60, address=other))
    book.record(_seen("old", NOW - 2 * 3600, address=other))
    book.record(_seen("o2", NOW - 2 * 3600 - 10, address=other))
    ranked = book.trending(3600, limit=10)
    assert [(r["address"], r["posts"]) for r in ranked] == [(PEPE, 3), (other, 1)]
    assert [(r["address"], r["posts"]) for r in book.trending(KEEP_S, 10)] == [
        (PEPE, 3), (other, 3),  # a tie: by address
    ]  # fmt: skip
    clock[0] = NOW + KEEP_S + 2 * WINDOW_S
    assert book.expire() > 0
    assert book.trending(KEEP_S, 10) == []
    kept = book.lookup("evm", PEPE)
    assert kept is not None and kept["windows"] == [] and kept["first_seen"]  # for 30 days
    # A sighting older than the windows kept sets nothing but a first sighting.
    book.record(_seen("ancient", NOW - 3 * KEEP_S, address="0x" + "1" * 40))
    assert book.trending(KEEP_S, 10) == []


def test_a_posts_own_time_is_believed_only_near_when_kafka_got_it() -> None:
    recorded = NOW
    assert posted_at(None, recorded) == recorded
    near = datetime.fromtimestamp(NOW - 600, UTC)
    assert posted_at(near, recorded) == NOW - 600
    for far in (NOW - 3 * 86400, NOW + 3600):  # a day off, or in the future: Kafka's time
        assert posted_at(datetime.fromtimestamp(far, UTC), recorded) == recorded


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.floats(0, 7200)), max_size=40),
    st.randoms(use_true_random=False),
)
def test_counts_are_distinct_posts_whatever_the_order_and_the_repeats(
    sightings: list[tuple[int, int, float]], rng: object
) -> None:
    book, _ = _book()
    records = [(post, image, NOW - age) for post, image, age in sightings]
    # At least once: any record may come again, in any order.
    replayed = records + records[: len(records) // 2]
    rng.shuffle(replayed)  # type: ignore[attr-defined]
    seen = [_seen(f"m{post}", at, image=f"https://a/{image}.png") for post, image, at in replayed]
    # One at a time, or in batches as the agent writes them (each key once per batch): the same.
    batched, _ = _book()
    for start in range(0, len(seen), 7):
        batched.record_all(seen[start : start + 7])
    for sighting in seen:
        book.record(sighting)
    assert batched.lookup("evm", PEPE) == book.lookup("evm", PEPE)
    # A worker taking the partition over rebuilds the same book from the tables alone.
    taken = AddressBook(batched._first_seen, batched._windows, batched._authors, clock=lambda: NOW)
    taken.reindex()
    assert taken.lookup("evm", PEPE) == book.lookup("evm", PEPE)
    assert taken.trending(KEEP_S, 5) == book.trending(KEEP_S, 5)
    # A post counts once, in the window of its first sighting (the earliest-read record).
    first_read: dict[int, float] = {}
    for post, _, at in replayed:
        first_read.setdefault(post, at)
    expected: dict[int, set[int]] = {}
    for post, at in first_read.items():
        expected.setdefault(window_start(at), set()).add(post)
    found = book.lookup("evm", PEPE)
    if not records:
        assert found is None
        return
    assert found is not None
    assert {w["start"]: w["posts"] for w in found["windows"]} == {
        start: len(posts) for start, posts in expected.items()
    }


def test_a_full_book_forgets_the_least_recently_seen_and_unseen_addresses_expire() -> None:
    book, clock = _book(max_addresses=3, forget_after_s=7 * 86400)
    addresses = [f"0x{i:040x}" for i in range(5)]
    for i, address in enumerate(addresses[:3]):
        book.record(_seen(f"m{i}", NOW - 60 + i, address=address))
    book.record(_seen("again", NOW - 10, address=addresses[0]))  # seen again: kept
    book.record(_seen("m3", NOW - 5, address=addresses[3]))  # makes room: forgets #1
    assert len(book) == 3 and book.made_room == 1
    assert book.lookup("evm", addresses[1]) is None
    assert {r["address"] for r in book.trending(KEEP_S, 10)} == {
        addresses[0], addresses[2], addresses[3]
    }  # fmt: skip
    # Nothing of a forgotten address stays in the tables (a successor would find none).
    assert not [k for k in book._windows.store if addresses[1].encode() in k]
    assert f"evm:{addresses[1]}".encode() not in book._first_seen.store
    # Unseen for a week: forgotten; seen lately: kept.
    clock[0] = NOW + 7 * 86400 - 30
    book.record(_seen("late", clock[0], address=addresses[2]))
    clock[0] = NOW + 7 * 86400 + 60
    book.expire()
    assert [a for a in addresses if book.lookup("evm", a)] == [addresses[2]]
    assert book.forgotten == 2
    assert len(book._first_seen.store) == 1 and len(book._windows.store) == 1


def test_a_window_remembers_a_bounded_number_of_posts_and_keeps_counting() -> None:
    book, _ = _book()
    book.record_all(_seen(f"m{i}", NOW - 60) for i in range(MAX_POSTS_REMEMBERED + 50))
    found = book.lookup("evm", PEPE)
    assert found is not None and found["posts_24h"] == MAX_POSTS_REMEMBERED + 50
    # One record per window, its size bounded: 4 bytes and 8 a remembered post.
    [value] = book._windows.store.values()
    assert len(value) == 4 + 8 * MAX_POSTS_REMEMBERED
    book.record(_seen("m7", NOW - 60))  # remembered: counts nothing
    again = book.lookup("evm", PEPE)
    assert again is not None and again["posts_24h"] == MAX_POSTS_REMEMBERED + 50


def test_each_key_is_written_once_per_batch() -> None:
    writes: list[bytes] = []

    class Counting(dict[bytes, bytes]):
        def __setitem__(self, key: bytes, value: bytes) -> None:
            writes.append(key)
            super().__setitem__(key, value)

    book = AddressBook(*_tables(Counting(), Counting(), Counting()), clock=lambda: NOW)
    book.record_all(_seen(f"m{i}", NOW - 60 + i % 2) for i in range(200))
    # One first sighting, one window, one author's day: three changelog records for 200 posts.
    assert sorted(writes) == sorted(set(writes)) and len(writes) == 3


def test_a_worker_bound_to_every_address_advertises_a_host_the_others_reach() -> None:
    import socket

    from app.faust_app import advertised_host, new_app
    from app.settings import Settings

    # 0.0.0.0 named every worker alike: each took itself for the book's holder.
    assert advertised_host("0.0.0.0") == socket.gethostname() == advertised_host("::")
    assert advertised_host("10.0.0.7") == "10.0.0.7"
    assert advertised_host("0.0.0.0", "worker-2.internal") == "worker-2.internal"
    app = new_app(Settings(web_host="0.0.0.0", web_advertised_host="w2", web_port=6070))
    assert (app.conf.canonical_url.host, app.conf.canonical_url.port) == ("w2", 6070)
    assert app.conf.web_bind == "0.0.0.0"


def test_one_author_brings_at_most_its_share_of_new_addresses_a_day() -> None:
    book, clock = _book(new_per_author_per_day=2)
    made_up = [f"0x{i:040x}" for i in range(4)]
    for i, address in enumerate(made_up):
        book.record(_seen(f"m{i}", NOW - 60, address=address, author="spammer"))
    assert [a for a in made_up if book.lookup("evm", a)] == made_up[:2]
    assert book.over_share == 2
    # Others still bring theirs, and the spammer's posts of known addresses still count.
    book.record(_seen("h1", NOW - 50, address=made_up[3], author="honest"))
    book.record(_seen("m9", NOW - 40, address=made_up[0], author="spammer"))
    found = book.lookup("evm", made_up[0])
    assert found is not None and found["posts_24h"] == 2
    assert book.lookup("evm", made_up[3]) is not None
    # A successor holds the same shares; the next day the spammer brings new ones again.
    taken = AddressBook(book._first_seen, book._windows, book._authors, clock=lambda: clock[0],
                        new_per_author_per_day=2)  # fmt: skip
    taken.reindex()
    assert taken.record(_seen("m5", NOW - 30, address=made_up[2], author="spammer")) is False
    clock[0] = NOW + 86400
    assert taken.record(_seen("m6", clock[0], address=made_up[2], author="spammer")) is True
    taken.expire()
    assert list(taken._authors.store) == [f"x:spammer|{int(clock[0] // 86400)}".encode()]


def test_a_takeover_skips_what_it_cannot_read_and_keeps_the_rest() -> None:
    book, _ = _book()
    book.record(_seen("1", NOW - 60))
    book._first_seen.store[b"evm:0xbad"] = b"not json"
    book._windows.store[b"evm:0xbad|nope"] = b"\x00"
    book._windows.store[b"evm:0xshort|1800000000"] = b"\x00"
    book._authors.store[b"x:a|day"] = b"many"
    taken = AddressBook(book._first_seen, book._windows, book._authors, clock=lambda: NOW)
    taken.reindex()
    found = taken.lookup("evm", PEPE)
    assert found is not None and found["posts_24h"] == 1 and len(taken) == 1


async def test_a_rebuild_lets_the_loop_run_and_builds_what_reindex_does() -> None:
    book, _ = _book(max_addresses=20_000.0, new_per_author_per_day=20_000.0)
    book.record_all(_seen(str(n), NOW - n, address=f"0x{n:040x}") for n in range(12_000))
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    counting = asyncio.ensure_future(count_turns())
    taken = AddressBook(book._first_seen, book._windows, book._authors, clock=lambda: NOW)
    taken.forget_index()
    taken.start_rebuild()
    assert taken.rebuilding
    # A rebalance meanwhile starts it again; whoever waits waits for the newer one.
    await asyncio.sleep(0)
    taken.start_rebuild()
    await taken.until_indexed()
    counting.cancel()
    assert not taken.rebuilding and turns >= 4  # 24,000 records: the loop ran between steps
    assert taken.trending(KEEP_S, 5) == book.trending(KEEP_S, 5)
    assert taken.lookup("evm", f"0x{7:040x}") == book.lookup("evm", f"0x{7:040x}")


async def test_a_rebuild_that_fails_is_done_again_at_its_next_use() -> None:
    book, _ = _book()
    book.record(_seen("1", NOW - 100))
    taken = AddressBook(book._first_seen, book._windows, book._authors, clock=lambda: NOW)
    taken._first_seen.store[b"evm:0xbroken"] = b"{"  # unreadable: skipped, logged
    failing = {b"evm:x": object()}  # not bytes: the rebuild itself breaks
    windows = taken._windows
    taken._windows = BookTable(failing, "windows")  # type: ignore[arg-type]
    taken.start_rebuild()
    await taken.until_indexed()  # logged, not raised
    taken._windows = windows
    assert taken.record(_seen("2", NOW - 50)) is False  # rebuilt at once: post 1 is first
    found = taken.lookup("evm", PEPE)
    assert found is not None and found["first_seen"]["ref"]["mid"] == "1"


def test_a_book_told_it_is_not_held_rebuilds_before_it_is_used_again() -> None:
    """Handed records after forgetting its index, it must not take every address for new."""
    book, _ = _book()
    assert book.record(_seen("1", NOW - 100)) is True
    book.forget_index()
    assert book.record(_seen("2", NOW - 50)) is False  # PEPE's first is still post 1
    found = book.lookup("evm", PEPE)
    assert found is not None and found["first_seen"]["ref"]["mid"] == "1"
