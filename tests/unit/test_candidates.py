"""The candidates topic's records: bundles hold their candidates in order, within their size."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.pipeline.candidates import BUNDLE_MAX_BYTES, bundle_values, read_candidates
from app.pipeline.records import RecordRefused
from models.events import Candidate

texts = st.text(max_size=300) | st.text(min_size=2000, max_size=3000)
candidates = st.builds(
    Candidate,
    event=st.dictionaries(st.sampled_from(["source", "mid", "text"]), st.text(max_size=20)),
    match_text=texts,
    event_id=st.text(max_size=20),
    key=st.none() | st.text(max_size=20),
)


@settings(max_examples=200, deadline=None)
@given(offered=st.lists(candidates, max_size=40), max_bytes=st.integers(100, 20_000))
def test_bundles_hold_every_candidate_in_order_within_their_size(
    offered: list[Candidate], max_bytes: int
) -> None:
    values = bundle_values(offered, max_bytes)
    read = [item for value in values for item in read_candidates(value)]
    assert [item.candidate for item in read] == offered
    assert all(item.bundled for item in read)
    for value in values:
        # Only a candidate larger than a bundle travels alone, past the bound.
        assert len(value) <= max_bytes + 32 or len(json.loads(value)["candidates"]) == 1


def test_a_bundle_is_bounded_by_default_and_a_candidate_keeps_its_own_bytes() -> None:
    many = [Candidate(event={"mid": str(i)}, match_text="gm " * 100) for i in range(2000)]
    values = bundle_values(many)
    assert len(values) > 1 and all(len(v) <= BUNDLE_MAX_BYTES + 32 for v in values)
    first = read_candidates(values[0])[0]
    assert Candidate.model_validate_json(first.own_bytes() or b"") == many[0]


def test_a_record_of_one_candidate_is_still_read_and_is_its_own_dead_letter() -> None:
    # Written by the design before bundles, by the OCR agent, and when batches are off.
    one = Candidate(event={"mid": "1"}, match_text="gm")
    [item] = read_candidates(one.model_dump_json().encode())
    assert item.candidate == one and not item.bundled and item.own_bytes() is None


@pytest.mark.parametrize(
    "raw", [None, b"", b"{not json", b'{"candidates": [{"event": 1}]}', b'{"candidates": 3}']
)
def test_a_record_that_is_neither_is_refused_with_a_reason(raw: bytes | None) -> None:
    with pytest.raises(RecordRefused, match="candidate"):
        read_candidates(raw)
