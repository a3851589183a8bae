"""Which partitions count as stalled: records past the committed offset."""

from __future__ import annotations

from app.kafka.stall_watch import stalled_partitions


def test_only_partitions_with_records_past_their_committed_offset_are_suspects() -> None:
    committed = {"a": 10, "b": 5, "c": 7}
    end = {"a": 10, "b": 9, "c": 8, "d": 3}
    assert stalled_partitions(committed, end, {"a", "b", "c", "d"}) == {"b": 5, "c": 7}
    assert stalled_partitions(committed, end, {"a"}) == {}  # caught up
    assert stalled_partitions({}, end, {"d"}) == {}  # never committed: not ours to judge
