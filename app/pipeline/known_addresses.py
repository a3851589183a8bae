"""Every worker's copy of which addresses the book holds: so a known address skips a hop.

A candidate that shows an address used to reach the filter only through the address book (the
sightings topic), the book marking its first sightings. But an address the book already holds
has its first sighting decided: the candidate's event is the first only if it is that same
event (a repeat, at least once). Every worker keeps, from the ``address_first_seen`` changelog,
each address's first event and time; a candidate whose addresses are all known goes straight
to the filter, marked here, and only its sightings go to the book, to be counted. Only a
candidate showing an address new to the book takes the hop.

Where the copy may lag the book (milliseconds: the changelog is written with each book batch),
the answer is the book's of a moment ago: a candidate read in the moment after the book forgot
an address (unseen for 30 days, or to make room) goes unmarked, and the book then records it
as the address's first. A candidate claiming a time before an address's first sighting goes
through the book (the earliest post wins there), as does everything until the copy has read
the changelog up to where it stood at start.
"""

from __future__ import annotations

import asyncio
import logging

from mode import Service

from app.kafka.changelogs import follow_changelog
from app.pipeline.address_book import decode_entry
from app.pipeline.sightings import booked, marked, shown_by
from app.settings import Settings
from models.events import BuyCa, Candidate
from models.sightings import Sighting

log = logging.getLogger(__name__)


class KnownAddresses(Service):
    """The book's addresses, each with its first event and time, read from its changelog."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings
        # ``network:address`` -> (its first sighting's event id, that sighting's time)
        self._firsts: dict[str, tuple[str, float]] = {}
        # Why bounded: the book holds at most this many; a copy past it only sends more
        # candidates through the book.
        self._max = settings.address_book_max_addresses
        self._ready = asyncio.Event()
        # Candidates that showed an address: sent straight on, and through the book (/status/).
        self.skipped_book = 0
        self.through_book = 0

    def __len__(self) -> int:
        return len(self._firsts)

    async def on_start(self) -> None:
        """Start following the changelog from its beginning (only while the book is on)."""
        if self._settings.address_book:
            self.add_future(self._follow())

    async def _follow(self) -> None:
        await follow_changelog(
            self._settings,
            self._settings.address_first_seen_changelog_topic,
            self.apply,
            self._set_ready,
            lambda: self.should_stop,
            "known addresses",
        )

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Take one changelog record: an address's entry, or None when the book forgot it."""
        if key is None:
            return
        address = key.decode(errors="replace")
        if value is None:
            self._firsts.pop(address, None)
            return
        try:
            first = decode_entry(value).first
        except ValueError:
            # Unknown here: its candidates go through the book, which reads it its own way.
            self._firsts.pop(address, None)
            log.error("known addresses: unreadable entry for %r skipped", address[:200])
            return
        if address in self._firsts or len(self._firsts) < self._max:
            self._firsts[address] = (first.event_id, first.at)

    def _set_ready(self) -> None:
        if not self._ready.is_set():
            self._ready.set()
            log.info("known addresses ready: %d addresses", len(self._firsts))

    def firsts(self, shown: list[Sighting]) -> set[str] | None:
        """Return the addresses these sightings are the first of; None when only the book knows.

        None while the copy is catching up, for an address it does not hold, and for a
        sighting earlier than its address's first (it may become the first).
        """
        if not self._ready.is_set():
            return None
        found = set()
        for sighting in shown:
            held = self._firsts.get(sighting.key)
            if held is None or sighting.at < held[1]:
                return None
            if held[0] == sighting.event_id:
                found.add(sighting.key)
        return found

    def route(
        self, candidate: Candidate, addresses: list[BuyCa], at: float
    ) -> tuple[Candidate, list[Sighting] | None]:
        """Return the candidate and, when it may skip the book, the sightings the book counts.

        With sightings: the candidate goes straight to the filter, marked, and the sightings to
        the book. Without (None): the candidate is booked, and goes through the book.
        """
        shown = shown_by(candidate, addresses, at)
        firsts = self.firsts(shown)
        if firsts is None:
            self.through_book += 1
            return booked(candidate, addresses, at), None
        self.skipped_book += 1
        return (marked(candidate, firsts) if firsts else candidate), shown

    def status(self) -> dict[str, object]:
        """Return what /status/ shows of the copy: its size, and what it sent where."""
        return {
            "ready": self._ready.is_set(),
            "addresses": len(self._firsts),
            "skipped_book": self.skipped_book,
            "through_book": self.through_book,
        }
