"""The address book's agent's work: record a batch's sightings, then pass its candidates on.

A candidate that shows an address reaches the filter through here (the sightings topic): the
book records a sighting of each address, and the candidate goes on to the candidates topic,
under the key it came with, its event marked ``first_seen`` where it is an address's first
sighting. The record's outcome is its candidates' delivery: a failure of the book itself costs
only the marks (logged and counted), never the delivery.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import TypeAdapter, ValidationError

from app.kafka.outbox import Outbox, Outgoing
from app.metrics import metrics
from app.pipeline.address_book import AddressBook, Change
from app.pipeline.boundary import record_boundary
from app.pipeline.candidates import Offered, bundle_bytes, bundles
from app.pipeline.dead_letters import DeadLetters
from app.pipeline.publish import publish
from app.pipeline.records import RecordRefused, decode_with
from app.pipeline.sighting_records import not_counted
from app.pipeline.sightings import candidate_sightings, marked
from app.settings import Settings
from models.events import Candidate, CandidateBundle
from models.sightings import Sighting, SightingBundle

log = logging.getLogger(__name__)

# Why only logged when Kafka refuses one of the book's changelog records: the book here has the
# change; a successor would miss it. Kafka refuses one only for a bug (every value is bounded)
# or a missing right.
_CHANGE_LOST = "address book change not written"

# What the sightings topic holds: a candidate or a bundle of them on their way to the filter,
# or (written before candidates went through the book) sightings alone.
_BOOKED: TypeAdapter[Candidate | CandidateBundle | SightingBundle] = TypeAdapter(
    Candidate | CandidateBundle | SightingBundle
)


class _Read:
    """One sightings record: its candidates (with their sightings), or bare sightings."""

    def __init__(self, event: Any, offered: list[Offered], sightings: list[Sighting]) -> None:
        self.event = event
        self.offered = offered
        self.sightings = sightings
        self.sightings_of = [candidate_sightings(item.candidate) for item in offered]

    def all_sightings(self) -> list[Sighting]:
        """Return every sighting the record brings."""
        return self.sightings + [s for many in self.sightings_of for s in many]


class BookKeeper:
    """Records sightings in the address book and passes the candidates on, marked."""

    def __init__(
        self, settings: Settings, book: AddressBook, outbox: Outbox, dead_letters: DeadLetters
    ) -> None:
        self._settings = settings
        self._book = book
        self._outbox = outbox
        self._dead_letters = dead_letters

    async def handle(self, events: list[Any]) -> None:
        """Record a batch's sightings, then produce its candidates, marked, to the filter."""
        await self._book.until_indexed()  # after a takeover, its index is being rebuilt
        read: list[_Read] = []
        for event in events:
            async with record_boundary(self._dead_letters, "sightings", event):
                read.append(_read(event))
        self._record(read)
        limit = await self._outbox.limits.limit(self._settings.candidates_topic)
        outgoing: list[Outgoing] = []
        origins: dict[int, list[tuple[_Read, Offered]]] = {}
        # Why by key: the batch's candidates of one posts partition go on in one bundle (in
        # their order), not one record per record read.
        by_key: dict[bytes | None, list[tuple[_Read, Offered, Candidate]]] = {}
        for record in read:
            for item, shown in zip(record.offered, record.sightings_of, strict=True):
                candidate = marked(item.candidate, self._firsts(shown))
                by_key.setdefault(record.event.key, []).append((record, item, candidate))
        for key, members in by_key.items():
            candidates = [candidate for _, _, candidate in members]
            for value, held in bundles(candidates, bundle_bytes(limit)):
                out = Outgoing(self._settings.candidates_topic, key, value)
                origins[id(out)] = [(members[i][0], members[i][1]) for i in held]
                outgoing.append(out)
        # The book's changes go with the batch: durable before its records are acknowledged.
        changes = changelog_records(self._book.take_changes())
        refused = await publish(self._outbox, outgoing + changes)
        for out in not_counted(refused, changes, _CHANGE_LOST):
            reason = f"{out.topic} record not produced: {out.error}"
            for record, item in origins[id(out)]:
                await self._dead_letters.send("sightings", reason, record.event, item.own_bytes())

    async def expire(self) -> int:
        """Expire what the book keeps no longer, and write the deletions to its changelogs."""
        await self._book.until_indexed()
        deleted = self._book.expire()
        changes = changelog_records(self._book.take_changes())
        not_counted(await publish(self._outbox, changes), changes, _CHANGE_LOST)
        return deleted

    def _record(self, read: list[_Read]) -> None:
        """Record the batch's sightings; a failure costs only the marks of what it touched."""
        try:
            self._book.record_all(s for record in read for s in record.all_sightings())
            return
        except Exception:
            log.exception("the address book failed a batch; recording its records one by one")
        for record in read:
            try:
                self._book.record_all(record.all_sightings())
            except Exception as exc:
                # Why not a dead letter: the candidates are still delivered, unmarked.
                log.exception("the address book failed a record; its candidates go on unmarked")
                metrics.record_errors.labels(stage="sightings").inc()
                metrics.error("sightings", f"address book: {type(exc).__name__}: {exc}")

    def _firsts(self, shown: list[Sighting]) -> set[str]:
        """Return the addresses whose first sighting these are."""
        return {s.key for s in shown if self._book.is_first(s)}


def changelog_records(changes: list[Change]) -> list[Outgoing]:
    """Return the book's changes as changelog records (a deletion is a tombstone)."""
    return [
        Outgoing(change.topic, change.key, change.value or b"", tombstone=change.value is None)
        for change in changes
    ]


def _read(event: Any) -> _Read:
    """Return what one sightings record holds; raise RecordRefused when nothing readable."""
    decoded = decode_with(event.value, _BOOKED, "sightings record")
    if isinstance(decoded, SightingBundle):
        return _Read(event, [], decoded.sightings)
    offered = (
        [Offered(decoded)]
        if isinstance(decoded, Candidate)
        else [Offered(c, bundled=True) for c in decoded.candidates]
    )
    try:
        return _Read(event, offered, [])
    except ValidationError as exc:
        # Only a record not written by a worker: every booked candidate names its post.
        said = exc.errors()[0]["msg"] if exc.errors() else str(exc)
        reason = f"sightings record: a candidate without its post's ref: {said}"
        raise RecordRefused(reason) from None
