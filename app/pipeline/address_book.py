"""Which addresses were seen first when, and by how many posts each 5 minutes: the address book.

Three Faust tables (changelogged, one partition, co-partitioned with the sightings topic), so
the worker that takes the partition over recovers them:

- ``address_first_seen``: ``network:address`` -> the first sighting (time, post, event);
- ``address_windows``: ``network:address|window start`` -> distinct posts in that window;
- ``address_window_posts``: ``network:address|post`` -> the window it counted in (so a post
  counts once, in the window of its first sighting, whether its images also show the address,
  its record is read again after a crash, or the post is sent again).

Windows are tumbling, 5 minutes, by the post's time, kept 24 hours. Why windows of our own
keys and not Faust's windowed tables: their expiry never deletes a window in faust-streaming
0.15 (``Collection._del_old_keys`` looks up keys that it never stores: "XXX bug: this lookup
can never hit", says its source), so a day's windows would stay forever. Here a timer deletes
windows older than 24 hours, and the deletions reach the changelog too.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

from models.sightings import FirstSighting, Sighting

WINDOW_S = 300.0
KEEP_S = 24 * 3600.0
# The spans /trending answers for, by name.
SPANS_S = {"5m": 300.0, "15m": 900.0, "1h": 3600.0, "6h": 6 * 3600.0, "24h": KEEP_S}

Table = MutableMapping[bytes, bytes]


def window_start(at: float) -> int:
    """Return the start of the 5-minute window ``at`` falls in (seconds since the epoch)."""
    return int(math.floor(at / WINDOW_S) * WINDOW_S)


class AddressBook:
    """Records sightings into the tables and answers what they hold."""

    def __init__(
        self,
        first_seen: Table,
        windows: Table,
        window_posts: Table,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._first_seen = first_seen
        self._windows = windows
        self._window_posts = window_posts
        self._clock = clock

    def record_all(self, sightings: list[Sighting]) -> None:
        """Record a batch of sightings, writing each table key once (one changelog record).

        Why: every write of a Faust table is a changelog record; a batch's sightings of one
        address in one window become one count, not one record per post.
        """
        staged = _Staged(self._first_seen, self._windows, self._window_posts)
        book = AddressBook(staged.first_seen, staged.windows, staged.window_posts, self._clock)
        for sighting in sightings:
            book.record(sighting)
        staged.write_back()

    def record(self, sighting: Sighting) -> bool:
        """Record one sighting; return True when it is the address's first."""
        key = sighting.key.encode()
        held = self._first_seen.get(key)
        first = held is None
        if held is None or FirstSighting.model_validate_json(held).at > sighting.at:
            # The earliest post wins: a post read late (a slow image) still is the first.
            seen = FirstSighting(
                at=sighting.at,
                ref=sighting.ref,
                event_id=sighting.event_id,
                image_url=sighting.image_url,
            )
            self._first_seen[key] = seen.model_dump_json().encode()
        start = window_start(sighting.at)
        if start + WINDOW_S <= self._clock() - KEEP_S:
            return first  # older than the windows kept
        counted = f"{sighting.key}|{sighting.post}".encode()
        if counted not in self._window_posts:
            self._window_posts[counted] = str(start).encode()
            window = f"{sighting.key}|{start}".encode()
            self._windows[window] = str(int(self._windows.get(window, b"0")) + 1).encode()
        return first

    def expire(self) -> int:
        """Delete the windows (and their posts) older than 24 hours; return how many keys."""
        oldest = self._clock() - KEEP_S - WINDOW_S
        old_windows = [k for k in self._windows if int(k.decode().rsplit("|", 1)[1]) < oldest]
        old_posts = [k for k, start in self._window_posts.items() if int(start) < oldest]
        for table, keys in ((self._windows, old_windows), (self._window_posts, old_posts)):
            for key in keys:
                del table[key]
        return len(old_windows) + len(old_posts)

    def lookup(self, network: str, address: str) -> dict[str, Any] | None:
        """Return an address's first sighting and its posts per window (the last 24 hours)."""
        key = f"{network}:{address}"
        held = self._first_seen.get(key.encode())
        if held is None:
            return None
        now = self._clock()
        windows = []
        start = window_start(now - KEEP_S)
        while start <= now:
            count = self._windows.get(f"{key}|{start}".encode())
            if count is not None:
                windows.append({"start": start, "posts": int(count)})
            start += int(WINDOW_S)
        first = FirstSighting.model_validate_json(held)
        return {
            "network": network,
            "address": address,
            "first_seen": first.model_dump(mode="json", exclude_none=True),
            "windows": windows,
            "posts_24h": sum(w["posts"] for w in windows),
        }

    def trending(self, span_s: float, limit: int) -> list[dict[str, Any]]:
        """Return the addresses with the most distinct posts within the last ``span_s``."""
        since = self._clock() - span_s
        posts: dict[str, int] = defaultdict(int)
        for window, held in self._windows.items():
            key, start = window.decode().rsplit("|", 1)
            if int(start) + WINDOW_S > since:
                posts[key] += int(held)
        ranked = sorted(posts.items(), key=lambda item: (-item[1], item[0]))[:limit]
        answer = []
        for key, count in ranked:
            network, address = key.split(":", 1)
            first = self._first_seen.get(key.encode())
            first_at = FirstSighting.model_validate_json(first).at if first is not None else None
            answer.append(
                {"network": network, "address": address, "posts": count, "first_seen_at": first_at}
            )
        return answer


class _Overlay(MutableMapping[bytes, bytes]):
    """A table's changes held in memory over it, until written back in one go."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self.changes: dict[bytes, bytes] = {}

    def __getitem__(self, key: bytes) -> bytes:
        if key in self.changes:
            return self.changes[key]
        return self._table[key]

    def __contains__(self, key: object) -> bool:
        return key in self.changes or key in self._table

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.changes[key] = value

    def __delitem__(self, key: bytes) -> None:
        raise NotImplementedError("a batch only adds")

    def __iter__(self) -> Iterator[bytes]:
        raise NotImplementedError("a batch reads keys, never lists them")

    def __len__(self) -> int:
        raise NotImplementedError("a batch reads keys, never counts them")

    def get(self, key: bytes, default: Any = None) -> Any:
        """Return the value of ``key``, changed or not, or ``default``."""
        return self.changes.get(key, self._table.get(key, default))

    def write_back(self) -> None:
        """Write every changed key to the table, once."""
        for key, value in self.changes.items():
            self._table[key] = value


class _Staged:
    """The three tables, each behind an overlay, for one batch."""

    def __init__(self, first_seen: Table, windows: Table, window_posts: Table) -> None:
        self.first_seen = _Overlay(first_seen)
        self.windows = _Overlay(windows)
        self.window_posts = _Overlay(window_posts)

    def write_back(self) -> None:
        """Write the batch's changes to the tables."""
        for overlay in (self.first_seen, self.windows, self.window_posts):
            overlay.write_back()


@dataclass
class AddressBooks:
    """The book, and where it is: ``owner()`` is None here, else the holder's base URL.

    ``owner`` raises KeyError while no worker holds it (a rebalance under way).
    """

    book: AddressBook
    owner: Callable[[], str | None]
    enabled: bool = True
