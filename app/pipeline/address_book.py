"""Which addresses were seen first when, and by how many posts each 5 minutes: the address book.

Two Faust tables (changelogged, one partition, co-partitioned with the sightings topic), so
the worker that takes the partition over recovers them:

- ``address_first_seen``: ``network:address`` -> the first sighting (time, post, event) and
  when the address was last seen (rewritten at most once per address per window);
- ``address_windows``: ``network:address|window start`` -> the distinct posts counted in that
  window, and the digests of the posts it remembers (so a post counts once, in the window of
  its first sighting, whether its images also show the address, its record is read again
  after a crash, or the post is sent again);
- ``address_authors``: ``source:sid|day`` -> how many new addresses the author brought that
  day (UTC, by the book's clock).

Why one record per address and window, not one per post: each table write is a changelog
record, and a batch's posts of one address in one window become one write.

The book writes its tables' changelogs itself: a batch's changes (``take_changes``) are
produced with the batch's other records, through the outbox, in one go, and the batch is
acknowledged once the broker has them. Why not Faust's ``Table.__setitem__``: it sends each
write on its own through Faust's producer (about 85 µs a write here, most of the book's cost),
and does not wait for it before the input is acknowledged. Faust still holds the tables: it
creates their changelog topics, assigns their partition and recovers them on a takeover.

The holder keeps an index of both in memory (rebuilt from the tables when it takes the
partition over), so recording, ``/trending`` and expiry touch what they need, never a whole
table. What it may grow into is bounded: at most ``max_addresses`` addresses (the least
recently seen one is forgotten to make room), addresses unseen for ``forget_after_s`` are
forgotten, windows are kept 24 hours, and a window remembers at most
``MAX_POSTS_REMEMBERED`` posts (past that, its posts still count, but a repeat of one may
count again). And each author brings at most ``new_per_author_per_day`` new addresses a day:
past that, its sightings of addresses the book does not hold are not recorded. Why: one sender
posting made-up addresses would otherwise fill the book, push every other address out, and
then have an old address it posts again marked as a first sighting.

Windows are tumbling, 5 minutes, by the post's time. Why windows of our own keys and not
Faust's windowed tables: their expiry never deletes a window in faust-streaming 0.15
(``Collection._del_old_keys`` looks up keys that it never stores: "XXX bug: this lookup can
never hit", says its source), so a day's windows would stay forever. Here a timer deletes
windows older than 24 hours, and the deletions reach the changelog too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import struct
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from models.sightings import FirstSighting, Sighting

WINDOW_S = 300.0
KEEP_S = 24 * 3600.0
# The spans /trending answers for, by name.
SPANS_S = {"5m": 300.0, "15m": 900.0, "1h": 3600.0, "6h": 6 * 3600.0, "24h": KEEP_S}
# Why 1,000: a window's record stays under 8 KB (8 bytes a post), rewritten once per batch;
# an address with more distinct posts in 5 minutes tops /trending whatever a repeat adds.
MAX_POSTS_REMEMBERED = 1000
_DIGEST_BYTES = 8
_COUNT = struct.Struct(">I")
# Records a rebuild reads between two turns of the event loop (about 25 ms of work).
_REINDEX_STEP = 5000

log = logging.getLogger(__name__)

Table = MutableMapping[bytes, bytes]


@dataclass
class BookTable:
    """One of the book's tables: the holder's copy, and the changelog topic that keeps it."""

    store: Table
    changelog: str


@dataclass(frozen=True)
class Change:
    """A write of one table key, for its changelog: the new value, or None when deleted."""

    topic: str
    key: bytes
    value: bytes | None


def window_start(at: float) -> int:
    """Return the start of the 5-minute window ``at`` falls in (seconds since the epoch)."""
    return int(math.floor(at / WINDOW_S) * WINDOW_S)


def post_digest(post: str) -> bytes:
    """Return the 8-byte digest a window remembers a post by."""
    return hashlib.blake2b(post.encode(), digest_size=_DIGEST_BYTES).digest()


class BookEntry(BaseModel):
    """An address's record in ``address_first_seen``: its first sighting, when last seen."""

    first: FirstSighting
    last_at: float


def decode_entry(value: bytes) -> BookEntry:
    """Return an ``address_first_seen`` value (or one written before ``last_at`` existed)."""
    try:
        return BookEntry.model_validate_json(value)
    except ValidationError:
        first = FirstSighting.model_validate_json(value)
        return BookEntry(first=first, last_at=first.at)


@dataclass
class _Window:
    """The posts one address had in one window: how many, and the digests remembered."""

    posts: int = 0
    digests: list[bytes] = field(default_factory=list)

    def encode(self) -> bytes:
        """Return the table value: the count (4 bytes), then each digest."""
        return _COUNT.pack(self.posts) + b"".join(self.digests)

    @classmethod
    def decode(cls, value: bytes) -> _Window:
        """Return the window a table value holds."""
        (posts,) = _COUNT.unpack_from(value)
        body = value[_COUNT.size :]
        digests = [body[i : i + _DIGEST_BYTES] for i in range(0, len(body), _DIGEST_BYTES)]
        return cls(posts, digests)


@dataclass
class _Address:
    """What the index holds of one address."""

    first_at: float
    first_event: str
    last_at: float
    windows: dict[int, _Window] = field(default_factory=dict)
    # Each remembered post's digest, and the window it counted in.
    posts: dict[bytes, int] = field(default_factory=dict)


@dataclass
class _Changes:
    """What a batch changed, each table key written once when it ends."""

    firsts: dict[str, FirstSighting] = field(default_factory=dict)
    last_seen: set[str] = field(default_factory=set)
    windows: set[tuple[str, int]] = field(default_factory=set)
    authors: set[str] = field(default_factory=set)


class AddressBook:
    """Records sightings into the tables and answers what they hold."""

    def __init__(
        self,
        first_seen: BookTable,
        windows: BookTable,
        authors: BookTable,
        clock: Callable[[], float] = time.time,
        max_addresses: int = 100_000,
        forget_after_s: float = 30 * 86400.0,
        new_per_author_per_day: int = 500,
    ) -> None:
        self._first_seen = first_seen
        self._windows = windows
        self._authors = authors
        self._clock = clock
        self._max_addresses = max_addresses
        self._forget_after_s = forget_after_s
        self._new_per_author_per_day = new_per_author_per_day
        # New addresses each author brought, by ``source:sid|day``.
        self._brought: dict[str, int] = {}
        # What changed since the last ``take_changes``, by changelog topic and key.
        self._changes: dict[tuple[str, bytes], bytes | None] = {}
        # Least recently seen first: what a full book forgets first.
        self._index: dict[str, _Address] = {}
        self._by_window: dict[int, set[str]] = defaultdict(set)
        # Window keys found without their address when reindexing: deleted by the next expiry.
        self._orphans: list[bytes] = []
        # Addresses forgotten to make room, and for being unseen too long (shown on /status/).
        self.made_room = 0
        self.forgotten = 0
        # Sightings of new addresses not recorded: their author had brought its day's share.
        self.over_share = 0
        # Whether the index holds the tables (False after ``forget_index``).
        self._indexed = True
        self._rebuilding: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._index)

    def reindex(self) -> None:
        """Rebuild the index from the tables (when this worker takes the partition over).

        A record it cannot read is logged and skipped: a takeover must not fail on one.
        """
        for _ in self._reindexing():
            pass

    async def rebuild(self) -> None:
        """Rebuild the index as ``reindex`` does, letting the event loop run every few
        thousand records.

        Why: a full book (100,000 addresses, 300,000 windows) takes seconds of CPU
        (``bench/book_cost.py --takeover``), and the worker's web server, live streams and
        webhooks must not stop for it.
        """
        for _ in self._reindexing():
            await asyncio.sleep(0)

    @property
    def rebuilding(self) -> bool:
        """Return whether a rebuild started by ``start_rebuild`` is under way."""
        return self._rebuilding is not None and not self._rebuilding.done()

    def start_rebuild(self) -> None:
        """Rebuild the index in the background (one that was under way starts again).

        Why not awaited where a takeover calls it: Faust resumes the worker's streams only
        after its recovery callbacks return, and only the book's own users need the index:
        they wait for it (``until_indexed``).
        """
        self._stop_rebuild()
        self._rebuilding = asyncio.ensure_future(self.rebuild())

    async def until_indexed(self) -> None:
        """Wait for a rebuild under way to finish (at once when none is); never raises for it.

        A rebuild that failed leaves the index unbuilt, and its next use rebuilds it at once.
        """
        while (task := self._rebuilding) is not None and not task.done():
            try:
                # Why shielded: a caller cancelled (a worker stopping) must not cancel it.
                await asyncio.shield(task)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the caller itself is cancelled
                # The rebuild was, for a newer one (a rebalance meanwhile): wait for that.
            except Exception:
                log.exception("address book: rebuilding the index failed")
                return

    def _stop_rebuild(self) -> None:
        task, self._rebuilding = self._rebuilding, None
        if task is not None and not task.done():
            task.cancel()

    def forget_index(self) -> None:
        """Drop the index: this worker does not hold the book (its tables may be a standby)."""
        self._stop_rebuild()
        self._clear_index()

    def _clear_index(self) -> None:
        self._index.clear()
        self._by_window.clear()
        self._orphans = []
        self._brought = {}
        self._indexed = False

    def _indexed_now(self) -> None:
        # Why: a worker told it does not hold the book, then handed its records, must not
        # take every address for new (and mark it first seen): it rebuilds first.
        if not self._indexed:
            log.warning("address book used without its index: rebuilding it first")
            self._stop_rebuild()
            self.reindex()

    def _reindexing(self) -> Iterator[None]:
        """Rebuild the index, yielding every ``_REINDEX_STEP`` records."""
        self._clear_index()
        yield from self._index_firsts()
        self._index_authors()
        yield from self._index_windows()
        self._indexed = True

    def _index_firsts(self) -> Iterator[None]:
        entries = []
        # Why a copy of the items: a rebalance may recover into the store between two steps.
        for n, (stored, value) in enumerate(list(self._first_seen.store.items()), 1):
            try:
                entries.append((stored.decode(), decode_entry(value)))
            except (ValueError, UnicodeDecodeError):
                log.error("address book: unreadable first sighting %r skipped", stored[:200])
            if n % _REINDEX_STEP == 0:
                yield
        entries.sort(key=lambda pair: pair[1].last_at)
        for key, entry in entries:
            first = entry.first
            self._index[key] = _Address(first.at, first.event_id, entry.last_at)

    def _index_authors(self) -> None:
        self._brought = {}
        for stored, value in list(self._authors.store.items()):
            try:
                self._brought[stored.decode()] = int(value)
            except (ValueError, UnicodeDecodeError):
                log.error("address book: unreadable author's day %r skipped", stored[:200])

    def _index_windows(self) -> Iterator[None]:
        for n, (stored, value) in enumerate(list(self._windows.store.items()), 1):
            if n % _REINDEX_STEP == 0:
                yield
            try:
                key, start_text = stored.decode().rsplit("|", 1)
                start, window = int(start_text), _Window.decode(value)
            except (ValueError, UnicodeDecodeError, struct.error):
                log.error("address book: unreadable window %r skipped", stored[:200])
                continue
            held = self._index.get(key)
            if held is None:
                self._orphans.append(stored)
                continue
            held.windows[start] = window
            held.posts.update(dict.fromkeys(window.digests, start))
            self._by_window[start].add(key)

    def record_all(self, sightings: Iterable[Sighting]) -> None:
        """Record a batch of sightings, writing each table key once (one changelog record)."""
        self._indexed_now()
        changes = _Changes()
        for sighting in sightings:
            self._record(sighting, changes)
        self._write(changes)

    def record(self, sighting: Sighting) -> bool:
        """Record one sighting; return True when it is (still) the address's first."""
        self.record_all([sighting])
        return self.is_first(sighting)

    def is_first(self, sighting: Sighting) -> bool:
        """Return whether ``sighting``'s event is its address's first sighting.

        By the event, not by the moment: a record read again after a crash is still the
        first, so a delivery repeated at least once says the same.
        """
        held = self._index.get(sighting.key)
        return held is not None and held.first_event == sighting.event_id

    def _record(self, sighting: Sighting, changes: _Changes) -> None:
        key = sighting.key
        held = self._index.pop(key, None)
        if held is None:
            if not self._may_bring(sighting, changes):
                self.over_share += 1
                return
            self._make_room()
            held = _Address(sighting.at, sighting.event_id, sighting.at)
            changes.firsts[key] = _first_of(sighting)
        else:
            if sighting.at < held.first_at:
                # The earliest post wins: a post read late (a slow image) still is the first.
                held.first_at, held.first_event = sighting.at, sighting.event_id
                changes.firsts[key] = _first_of(sighting)
            if window_start(sighting.at) > window_start(held.last_at):
                changes.last_seen.add(key)  # stored once per window: it only drives forgetting
            held.last_at = max(held.last_at, sighting.at)
        self._index[key] = held  # now the most recently seen
        start = window_start(sighting.at)
        if start + WINDOW_S <= self._clock() - KEEP_S:
            return  # older than the windows kept
        digest = post_digest(sighting.post)
        if digest in held.posts:
            return
        window = held.windows.get(start)
        if window is None:
            window = held.windows[start] = _Window()
            self._by_window[start].add(key)
        window.posts += 1
        if len(window.digests) < MAX_POSTS_REMEMBERED:
            window.digests.append(digest)
            held.posts[digest] = start
        changes.windows.add((key, start))

    def _may_bring(self, sighting: Sighting, changes: _Changes) -> bool:
        """Count a new address to its author's day; False when it had brought its share."""
        ref = sighting.ref
        author = f"{ref.source}:{ref.sid}|{int(self._clock() // 86400)}"
        brought = self._brought.get(author, 0)
        if brought >= self._new_per_author_per_day:
            return False
        self._brought[author] = brought + 1
        changes.authors.add(author)
        return True

    def _write(self, changes: _Changes) -> None:
        """Write what a batch changed: each key once."""
        for author in changes.authors:
            self._put(self._authors, author.encode(), str(self._brought[author]).encode())
        for key in changes.firsts.keys() | changes.last_seen:
            held = self._index.get(key)
            if held is None:
                continue  # forgotten within the batch, to make room
            first = changes.firsts.get(key)
            if first is None:
                first = decode_entry(self._first_seen.store[key.encode()]).first
            entry = BookEntry(first=first, last_at=held.last_at)
            self._put(self._first_seen, key.encode(), entry.model_dump_json().encode())
        for key, start in changes.windows:
            held = self._index.get(key)
            window = None if held is None else held.windows.get(start)
            if window is not None:
                self._put(self._windows, f"{key}|{start}".encode(), window.encode())

    def _put(self, table: BookTable, key: bytes, value: bytes) -> None:
        table.store[key] = value
        self._changes[(table.changelog, key)] = value

    def _delete(self, table: BookTable, key: bytes) -> None:
        if key in table.store:
            del table.store[key]
            self._changes[(table.changelog, key)] = None

    def take_changes(self) -> list[Change]:
        """Return the writes since the last call, each key once, for the tables' changelogs."""
        changes = [Change(topic, key, value) for (topic, key), value in self._changes.items()]
        self._changes = {}
        return changes

    def _make_room(self) -> None:
        """Forget the least recently seen address while the book is full."""
        while len(self._index) >= self._max_addresses:
            self._forget(next(iter(self._index)))
            self.made_room += 1

    def _forget(self, key: str) -> None:
        held = self._index.pop(key)
        for start in held.windows:
            self._by_window[start].discard(key)
            self._delete(self._windows, f"{key}|{start}".encode())
        self._delete(self._first_seen, key.encode())

    def expire(self) -> int:
        """Delete windows older than 24 hours and addresses unseen too long; return how many."""
        self._indexed_now()
        now = self._clock()
        oldest = now - KEEP_S - WINDOW_S
        deleted = 0
        for start in sorted(s for s in self._by_window if s < oldest):
            for key in self._by_window.pop(start):
                held = self._index.get(key)
                window = None if held is None else held.windows.pop(start, None)
                if held is not None and window is not None:
                    for digest in window.digests:
                        held.posts.pop(digest, None)
                self._delete(self._windows, f"{key}|{start}".encode())
                deleted += 1
        # Least recently seen first: the first one seen lately ends the sweep.
        unseen_since = now - self._forget_after_s
        while self._index:
            key, held = next(iter(self._index.items()))
            if held.last_at >= unseen_since:
                break
            self._forget(key)
            self.forgotten += 1
            deleted += 1
        for window_key in self._orphans:
            self._delete(self._windows, window_key)
        deleted += len(self._orphans)
        self._orphans = []
        today = int(now // 86400)
        for author in [a for a in self._brought if int(a.rsplit("|", 1)[1]) < today]:
            del self._brought[author]
            self._delete(self._authors, author.encode())
            deleted += 1
        return deleted

    def lookup(self, network: str, address: str) -> dict[str, Any] | None:
        """Return an address's first sighting and its posts per window (the last 24 hours)."""
        self._indexed_now()
        key = f"{network}:{address}"
        held = self._index.get(key)
        stored = self._first_seen.store.get(key.encode())
        if held is None or stored is None:
            return None
        since = self._clock() - KEEP_S
        windows = [
            {"start": start, "posts": window.posts}
            for start, window in sorted(held.windows.items())
            if start + WINDOW_S > since
        ]
        first = decode_entry(stored).first
        return {
            "network": network,
            "address": address,
            "first_seen": first.model_dump(mode="json", exclude_none=True),
            "windows": windows,
            "posts_24h": sum(w["posts"] for w in windows),
        }

    def trending(self, span_s: float, limit: int) -> list[dict[str, Any]]:
        """Return the addresses with the most distinct posts within the last ``span_s``."""
        self._indexed_now()
        since = self._clock() - span_s
        posts: dict[str, int] = defaultdict(int)
        for start, keys in self._by_window.items():
            if start + WINDOW_S <= since:
                continue
            for key in keys:
                posts[key] += self._index[key].windows[start].posts
        ranked = sorted(posts.items(), key=lambda item: (-item[1], item[0]))[:limit]
        answer = []
        for key, count in ranked:
            network, address = key.split(":", 1)
            first_at = self._index[key].first_at
            answer.append(
                {"network": network, "address": address, "posts": count, "first_seen_at": first_at}
            )
        return answer


def _first_of(sighting: Sighting) -> FirstSighting:
    return FirstSighting(
        at=sighting.at,
        ref=sighting.ref,
        event_id=sighting.event_id,
        image_url=sighting.image_url,
    )


@dataclass
class AddressBooks:
    """The book, and where it is: ``owner()`` is None here, else the holder's base URL.

    ``owner`` raises KeyError while no worker holds it (a rebalance under way).
    """

    book: AddressBook
    owner: Callable[[], str | None]
    enabled: bool = True

    def held_here(self) -> bool:
        """Return whether this worker holds the book now (False while none does)."""
        try:
            return self.owner() is None
        except KeyError:
            return False
