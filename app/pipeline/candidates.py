"""The candidates topic's records: one candidate, or a bundle of a posts batch's. Pure.

(And the bundles of sightings a batch sends the address book: the same packing.)

Why bundles: the filter agent reads every post a second time. One record per post made that
hop cost as much Faust machinery per post as the first; one record per posts batch (and input
partition) leaves the filter one record per few hundred posts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import TypeAdapter

from app.pipeline.records import decode_with
from models.events import Candidate, CandidateBundle
from models.sightings import MAX_SIGHTINGS_PER_RECORD, Sighting

# Why bounded: a bundle is one Kafka record, and must fit the outbox's 256 KB produce batch
# and the broker's 1 MB record limit with room to spare. A larger candidate travels alone.
BUNDLE_MAX_BYTES = 128 * 1024
# What a record batch adds around one bundle: its header, the record's framing, the key.
_RECORD_FRAMING_BYTES = 1024

_CANDIDATES: TypeAdapter[Candidate | CandidateBundle] = TypeAdapter(Candidate | CandidateBundle)


@dataclass(frozen=True)
class Offered:
    """One candidate read from the candidates topic, and whether it came in a bundle."""

    candidate: Candidate
    bundled: bool = False

    def own_bytes(self) -> bytes | None:
        """Return what its dead letter shows: its own JSON in a bundle, else None (the record)."""
        # Why computed here: only a dead letter needs it, and bundles hold hundreds.
        return self.candidate.model_dump_json().encode() if self.bundled else None


def bundle_bytes(topic_limit: int) -> int:
    """Return how large a bundle may be on a candidates topic taking ``topic_limit`` bytes."""
    return max(1, min(BUNDLE_MAX_BYTES, topic_limit - _RECORD_FRAMING_BYTES))


def bundles(
    candidates: Sequence[Candidate], max_bytes: int = BUNDLE_MAX_BYTES
) -> list[tuple[bytes, range]]:
    """Return the candidates as bundle record values, in order, each at most ``max_bytes``,
    with the positions of the candidates each holds.

    A candidate larger than ``max_bytes`` travels alone, in a bundle of its own (which the
    outbox refuses when it is over its topic's limit: that candidate's outcome alone).
    """
    members = [candidate.model_dump_json().encode() for candidate in candidates]
    return [
        (_bundle(b"candidates", members[held.start : held.stop]), held)
        for held in packed(members, max_bytes)
    ]


def packed(members: Sequence[bytes], max_bytes: int, max_count: int | None = None) -> list[range]:
    """Return the runs of ``members``, in order, that fit a record of ``max_bytes`` each (with
    a comma between two), and at most ``max_count`` members; one too large goes alone."""
    runs: list[range] = []
    first = size = 0
    for index, member in enumerate(members):
        full = max_count is not None and index - first >= max_count
        if index > first and (full or size + len(member) + 1 > max_bytes):
            runs.append(range(first, index))
            first, size = index, 0
        size += len(member) + 1
    if members:
        runs.append(range(first, len(members)))
    return runs


def bundle_values(
    candidates: Sequence[Candidate], max_bytes: int = BUNDLE_MAX_BYTES
) -> list[bytes]:
    """Return the candidates as bundle record values, in order, each at most ``max_bytes``."""
    return [value for value, _ in bundles(candidates, max_bytes)]


def _bundle(field: bytes, members: Sequence[bytes]) -> bytes:
    # Why by hand: each member is serialised once, and its bytes are its dead letter's too.
    return b'{"' + field + b'":[' + b",".join(members) + b"]}"


def sighting_bundles(sightings: Sequence[Sighting], max_bytes: int) -> list[bytes]:
    """Return the sightings as sightings record values, in order, each at most ``max_bytes``."""
    members = [sighting.model_dump_json().encode() for sighting in sightings]
    return [
        _bundle(b"sightings", members[held.start : held.stop])
        for held in packed(members, max_bytes, MAX_SIGHTINGS_PER_RECORD)
    ]


def read_candidates(raw: bytes | None) -> list[Offered]:
    """Return the candidates of one record; raise RecordRefused when it holds none readable."""
    decoded = decode_with(raw, _CANDIDATES, "candidate")
    if isinstance(decoded, Candidate):
        return [Offered(decoded)]
    return [Offered(candidate, bundled=True) for candidate in decoded.candidates]
