"""The sightings agent's work: candidates through the address book, marked, then passed on."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from app.kafka.outbox import Outgoing
from app.pipeline.address_book import AddressBook, BookTable
from app.pipeline.book_keeping import BookKeeper
from app.pipeline.candidates import bundle_values
from app.pipeline.sightings import booked
from app.settings import Settings
from models.events import BuyCa, Candidate, Ref
from models.sightings import Sighting, SightingBundle

SETTINGS = Settings(broker="localhost:9092")
NOW = 1_800_000_000.0
PEPE = "0x6982508145454Ce325dDbE47a25d4ec3d2311933"
BONK = "DKwfFc2KA3i22DmxzLQzqi9weodLJXDxCtDpYaS9QJqc"


class Outbox:
    """Keeps what would be produced; refuses the records ``refuse`` says."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.refuse = False

        async def limit(topic: str) -> int:
            return 1_000_000

        self.limits = SimpleNamespace(limit=limit)

    async def send_until_done(self, records: list[Outgoing], timeout_s: float) -> list[Outgoing]:
        if self.refuse:
            for record in records:
                record.error = "MessageSizeTooLargeError"
            return list(records)
        self.sent.extend(records)
        return []


class Letters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes | str | None]] = []

    async def send(self, stage: str, reason: str, event: Any, raw: Any = None) -> None:
        self.sent.append((stage, reason, raw))


def _post(mid: str, text: str) -> Candidate:
    event: dict[str, Any] = {"source": "x", "mid": mid, "sid": "a", "link": f"https://x.com/a/status/{mid}",
             "text": text, "images": [], "timestamp": None}  # fmt: skip
    candidate = Candidate(event=event, event_id=f"post:x:{mid}", key=mid)
    return booked(candidate, [BuyCa(network="evm", address=PEPE)], NOW - 60)


def _image(mid: str) -> Candidate:
    ref = {"source": "x", "mid": mid, "sid": "a", "link": ""}
    shown = [{"network": "evm", "address": PEPE}, {"network": "solana", "address": BONK}]
    event = {"source": "ocr_result", "image_url": "https://i/1.png", "text": "", "ref": ref,
             "buy_ca": shown}  # fmt: skip
    candidate = Candidate(event=event, event_id=f"ocr:x:{mid}:1", key=mid)
    return booked(candidate, [BuyCa.model_validate(ca) for ca in shown], NOW - 30)


def _record(value: bytes, key: bytes = b"posts-0") -> Any:
    return SimpleNamespace(key=key, value=value, message=SimpleNamespace(partition=0, offset=0))


def _tables() -> tuple[BookTable, BookTable, BookTable]:
    first, windows, authors = (
        BookTable({}, f"changelog-{n}") for n in ("first", "windows", "authors")
    )
    return first, windows, authors


def _keeper() -> tuple[BookKeeper, AddressBook, Outbox, Letters]:
    book = AddressBook(*_tables(), clock=lambda: NOW)
    outbox, letters = Outbox(), Letters()
    return BookKeeper(SETTINGS, book, outbox, letters), book, outbox, letters  # type: ignore[arg-type]


def _delivered(outbox: Outbox) -> list[dict[str, Any]]:
    events = []
    for record in outbox.sent:
        if record.topic.startswith("changelog-"):
            continue
        assert record.topic == SETTINGS.candidates_topic
        value = json.loads(record.value)
        for candidate in value.get("candidates", [value]):
            assert "addresses" not in candidate and "seen_at" not in candidate
            events.append(candidate["event"])
    return events


async def test_first_sightings_are_marked_and_every_candidate_goes_on_under_its_key() -> None:
    keeper, book, outbox, _ = _keeper()
    bundle = bundle_values([_post("1", f"CA {PEPE}"), _post("2", f"{PEPE} again")])[0]
    await keeper.handle([_record(bundle), _record(_image("2").model_dump_json().encode(), b"2")])
    first, second, image = _delivered(outbox)
    assert first["first_seen"] is True and "first_seen" not in second
    # The image: BONK's first sighting, PEPE's not.
    assert image["first_seen"] is True
    assert image["buy_ca"] == [
        {"network": "evm", "address": PEPE},
        {"network": "solana", "address": BONK, "first_seen": True},
    ]
    assert [r.key for r in outbox.sent if r.topic == SETTINGS.candidates_topic] == [
        b"posts-0",
        b"2",
    ]
    # The book's writes go with the batch, each key once: 2 addresses, their windows, 1 author.
    changed = sorted((r.topic, r.key) for r in outbox.sent if r.topic.startswith("changelog-"))
    assert [topic for topic, _ in changed] == ["changelog-authors"] + ["changelog-first"] * 2 + [
        "changelog-windows"
    ] * 2
    # At least once: the same records again say the same, count nothing more, write nothing.
    outbox.sent.clear()
    await keeper.handle([_record(bundle), _record(_image("2").model_dump_json().encode(), b"2")])
    assert _delivered(outbox) == [first, second, image]
    assert [r.topic for r in outbox.sent] == [SETTINGS.candidates_topic] * 2
    found = book.lookup("evm", PEPE)
    assert found is not None and found["posts_24h"] == 2


async def test_a_book_that_fails_costs_the_marks_never_the_delivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keeper, book, outbox, letters = _keeper()

    def broken(sightings: Any) -> None:
        raise RuntimeError("a bug in the book")

    monkeypatch.setattr(book, "record_all", broken)
    await keeper.handle([_record(bundle_values([_post("1", PEPE)])[0])])
    [event] = _delivered(outbox)
    assert "first_seen" not in event and letters.sent == []


async def test_refused_and_unreadable_records_are_dead_lettered_each_with_its_reason() -> None:
    keeper, _, outbox, letters = _keeper()
    await keeper.handle([_record(b"not json"), _record(b'{"candidates": [{"nope": 1}]}')])
    assert [stage for stage, _, _ in letters.sent] == ["sightings", "sightings"]
    assert outbox.sent == []
    outbox.refuse = True
    await keeper.handle([_record(bundle_values([_post("1", PEPE), _post("2", PEPE)])[0])])
    refused = letters.sent[2:]
    assert len(refused) == 2 and all("MessageSizeTooLargeError" in r for _, r, _ in refused)
    # Each letter shows its own candidate, not the bundle.
    assert [json.loads(raw)["event"]["mid"] for _, _, raw in refused] == ["1", "2"]  # type: ignore[arg-type]


async def test_records_written_before_candidates_went_through_the_book_are_still_read() -> None:
    keeper, book, outbox, letters = _keeper()
    ref = Ref(source="x", mid="9", sid="a", link="")
    old = SightingBundle(
        sightings=[
            Sighting(
                network="evm", address=PEPE, post="x:a:9", ref=ref, at=NOW - 5, event_id="post:x:9"
            )  # fmt: skip
        ]
    )
    await keeper.handle([_record(old.model_dump_json().encode(), b"sightings")])
    assert _delivered(outbox) == [] and letters.sent == []
    found = book.lookup("evm", PEPE)
    assert found is not None and found["first_seen"]["event_id"] == "post:x:9"


async def test_expiry_writes_its_deletions_as_tombstones() -> None:
    clock = [NOW]
    book = AddressBook(*_tables(), clock=lambda: clock[0], forget_after_s=86400)
    outbox, letters = Outbox(), Letters()
    keeper = BookKeeper(SETTINGS, book, outbox, letters)  # type: ignore[arg-type]
    await keeper.handle([_record(bundle_values([_post("1", PEPE)])[0])])
    outbox.sent.clear()
    clock[0] = NOW + 3 * 86400
    assert await keeper.expire() == 3  # the window, the address, the author's day
    assert {(r.topic, r.tombstone, r.value) for r in outbox.sent} == {
        ("changelog-windows", True, b""),
        ("changelog-first", True, b""),
        ("changelog-authors", True, b""),
    }
    assert book.lookup("evm", PEPE) is None


async def test_a_batchs_candidates_of_one_partition_go_on_in_one_record_in_order() -> None:
    keeper, _, outbox, _ = _keeper()
    records = [_record(bundle_values([_post(f"{i}", PEPE)])[0]) for i in range(4)]
    await keeper.handle(records)
    [forwarded] = [r for r in outbox.sent if r.topic == SETTINGS.candidates_topic]
    assert forwarded.key == b"posts-0"
    assert [e["mid"] for e in _delivered(outbox)] == ["0", "1", "2", "3"]


async def test_a_refused_changelog_record_costs_the_count_never_the_delivery() -> None:
    keeper, _, outbox, letters = _keeper()
    send = outbox.send_until_done

    async def refuse_changelogs(records: list[Outgoing], timeout_s: float) -> list[Outgoing]:
        lost = [r for r in records if r.topic.startswith("changelog-")]
        for record in lost:
            record.error = "TopicAuthorizationFailedError"
        await send([r for r in records if r not in lost], timeout_s)
        return lost

    outbox.send_until_done = refuse_changelogs  # type: ignore[method-assign]
    await keeper.handle([_record(_post("1", f"CA {PEPE}").model_dump_json().encode())])
    [delivered] = _delivered(outbox)
    assert delivered["first_seen"] is True and not letters.sent
