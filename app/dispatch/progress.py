"""Which offset of a partition may be committed when records finish out of order."""

from __future__ import annotations


class PartitionProgress:
    """Offsets read but not finished; the commit point is the lowest of them.

    Why our own: deliveries to different endpoints finish in any order, and Faust's
    out-of-order acks can commit past an unfinished record (faust-streaming #312: its gap check
    compares against the committed offset off by one), which would lose that delivery on a crash.
    """

    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._next = -1  # one past the highest offset read

    def begin(self, offset: int) -> None:
        """Note that the record at ``offset`` was read and is under way."""
        self._pending.add(offset)
        self._next = max(self._next, offset + 1)

    def finish(self, offset: int) -> None:
        """Note that the record at ``offset`` is done (delivered, skipped or dead-lettered)."""
        self._pending.discard(offset)

    @property
    def pending(self) -> int:
        """Return how many records are under way."""
        return len(self._pending)

    def commit_point(self) -> int | None:
        """Return the offset to commit (all below it are done), or None if nothing was read."""
        if self._pending:
            return min(self._pending)
        return self._next if self._next >= 0 else None
