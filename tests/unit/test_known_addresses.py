"""Every worker's copy of the book's first sightings: a known address skips the book's hop.

The copy's answer, whenever it gives one, must be the book's own: checked against the book on
generated sequences of sightings, forgetting and expiry.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.pipeline.address_book import AddressBook, BookEntry, BookTable
from app.pipeline.known_addresses import KnownAddresses
from app.pipeline.sightings import candidate_sightings
from app.settings import Settings
from models.events import BuyCa, Candidate, Ref
from models.sightings import FirstSighting

SETTINGS = Settings(broker="localhost:9092")
NOW = 1_800_000_000.0
PEPE = BuyCa(network="evm", address="0x6982508145454Ce325dDbE47a25d4ec3d2311933")
BONK = BuyCa(network="solana", address="DKwfFc2KA3i22DmxzLQzqi9weodLJXDxCtDpYaS9QJqc")
FIRST_SEEN = "changelog-first"


def _post(mid: str) -> Candidate:
    event: dict[str, Any] = {"source": "x", "mid": mid, "sid": "a", "link": "",
             "text": f"CA {PEPE.address}", "images": [], "timestamp": None}  # fmt: skip
    return Candidate(event=event, event_id=f"post:x:{mid}", key=mid)


def _entry(event_id: str, at: float) -> bytes:
    first = FirstSighting(at=at, ref=Ref(source="x", mid="1", sid="a", link=""), event_id=event_id)
    return BookEntry(first=first, last_at=at).model_dump_json().encode()


def _ready(known: KnownAddresses) -> KnownAddresses:
    known._set_ready()
    return known


def test_everything_goes_through_the_book_until_the_copy_has_caught_up() -> None:
    known = KnownAddresses(SETTINGS)
    known.apply(b"evm:" + PEPE.address.encode(), _entry("post:x:1", NOW))
    candidate, shown = known.route(_post("2"), [PEPE], NOW + 10)
    assert shown is None
    assert candidate.addresses == [PEPE] and candidate.seen_at == NOW + 10


def test_a_known_address_skips_the_book_and_a_repeat_of_its_first_event_is_marked() -> None:
    known = _ready(KnownAddresses(SETTINGS))
    known.apply(b"evm:" + PEPE.address.encode(), _entry("post:x:1", NOW))
    later, shown = known.route(_post("2"), [PEPE], NOW + 10)
    assert shown is not None and [s.key for s in shown] == [f"evm:{PEPE.address}"]
    assert "first_seen" not in later.event and not later.addresses and later.seen_at is None
    repeat, shown = known.route(_post("1"), [PEPE], NOW)
    assert shown is not None and repeat.event["first_seen"] is True


def test_an_unknown_address_an_earlier_post_or_a_forgotten_address_goes_through_the_book() -> None:
    known = _ready(KnownAddresses(SETTINGS))
    key = b"evm:" + PEPE.address.encode()
    known.apply(key, _entry("post:x:5", NOW))
    assert known.route(_post("6"), [PEPE, BONK], NOW + 1)[1] is None  # BONK is new
    assert known.route(_post("4"), [PEPE], NOW - 1)[1] is None  # may be the first
    known.apply(key, None)  # forgotten
    assert known.route(_post("6"), [PEPE], NOW + 1)[1] is None


def test_an_unreadable_entry_makes_its_address_unknown_and_the_copy_is_bounded() -> None:
    known = _ready(KnownAddresses(Settings(broker="localhost:9092", address_book_max_addresses=2)))
    key = b"evm:" + PEPE.address.encode()
    known.apply(key, _entry("post:x:1", NOW))
    known.apply(key, b"\xff not json")
    assert known.route(_post("2"), [PEPE], NOW + 1)[1] is None
    for n in range(5):
        known.apply(f"evm:0x{n:040x}".encode(), _entry("post:x:1", NOW))
    known.apply(None, _entry("post:x:1", NOW))
    assert len(known) == 2


_ADDRESSES = [BuyCa(network="evm", address=f"0x{n:040x}") for n in range(6)]
_STEP = st.one_of(
    st.tuples(
        st.just("see"),
        st.lists(st.sampled_from(_ADDRESSES), min_size=1, max_size=3, unique=True),
        st.integers(0, 7),  # the post
        st.floats(-300, 3600),  # its time, from the clock's
    ),
    st.tuples(st.just("wait"), st.floats(0, 40 * 86400)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_STEP, max_size=40))
def test_the_copys_answer_is_always_the_books(steps: list[tuple[Any, ...]]) -> None:
    """Fed the book's changelog, the copy answers as the book would, or leaves it to the book."""
    clock = [NOW]
    first, windows, authors = (BookTable({}, name) for name in (FIRST_SEEN, "c-windows", "c-a"))
    book = AddressBook(
        first, windows, authors, clock=lambda: clock[0], max_addresses=4, forget_after_s=86400.0
    )
    known = _ready(KnownAddresses(SETTINGS))
    for step in steps:
        if step[0] == "wait":
            clock[0] += step[1]
            book.expire()
        else:
            _, addresses, post, offset = step
            candidate, shown = known.route(_post(str(post)), addresses, clock[0] + offset)
            if shown is None:
                book.record_all(candidate_sightings(candidate))
            else:
                book.record_all(shown)
                firsts = {s.key for s in shown if book.is_first(s)}
                marked = {
                    f"{ca['network']}:{ca['address']}"
                    for ca in candidate.event.get("buy_ca", [])
                    if ca.get("first_seen")
                }
                assert candidate.event.get("first_seen", False) == bool(firsts)
                assert marked <= firsts  # a post event carries no buy_ca
        for change in book.take_changes():
            if change.topic == FIRST_SEEN:
                known.apply(change.key, change.value)
