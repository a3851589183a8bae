"""The candidates topic's records: one candidate, or a bundle of a posts batch's. Pure.

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
    found: list[tuple[bytes, range]] = []
    members: list[bytes] = []
    first = size = 0
    for index, candidate in enumerate(candidates):
        member = candidate.model_dump_json().encode()
        if members and size + len(member) + 1 > max_bytes:
            found.append((_bundle(members), range(first, index)))
            members, first, size = [], index, 0
        members.append(member)
        size += len(member) + 1
    if members:
        found.append((_bundle(members), range(first, len(candidates))))
    return found


def bundle_values(
    candidates: Sequence[Candidate], max_bytes: int = BUNDLE_MAX_BYTES
) -> list[bytes]:
    """Return the candidates as bundle record values, in order, each at most ``max_bytes``."""
    return [value for value, _ in bundles(candidates, max_bytes)]


def _bundle(members: list[bytes]) -> bytes:
    # Why by hand: each candidate is serialised once, and its bytes are its dead letter's too.
    return b'{"candidates":[' + b",".join(members) + b"]}"


def read_candidates(raw: bytes | None) -> list[Offered]:
    """Return the candidates of one record; raise RecordRefused when it holds none readable."""
    decoded = decode_with(raw, _CANDIDATES, "candidate")
    if isinstance(decoded, Candidate):
        return [Offered(decoded)]
    return [Offered(candidate, bundled=True) for candidate in decoded.candidates]
