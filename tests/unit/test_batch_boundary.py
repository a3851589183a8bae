"""A batch's records each end in one outcome, whatever breaks in the batch's shared work.

``handle_batch`` with the real dead-letter service (its letters written when the batch ends):
a record whose own handling fails gets one letter; an error in the shared work that one record
causes costs that record alone; a failed try's letters never double a record's outcome.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.pipeline.boundary import batch_boundary, handle_batch, record_boundary
from app.pipeline.dead_letters import DeadLetters
from app.pipeline.records import RecordRefused
from app.settings import Settings
from harness.outbox import RecordingOutbox
from models.dead_letter import DeadLetter


def _event(name: str, offset: int) -> Any:
    message = SimpleNamespace(topic="posts", partition=0, offset=offset, key=None)
    return SimpleNamespace(value=name.encode(), key=None, message=message)


async def _run(names: list[str], refused: set[str], poison: set[str], flaky: bool) -> Any:
    """Handle one batch: ``refused`` names are refused in their own boundary, a batch holding
    a ``poison`` name breaks in its shared work, and with ``flaky`` the first try breaks."""
    outbox = RecordingOutbox()
    letters = DeadLetters(Settings(broker="localhost:9092"), outbox)  # type: ignore[arg-type]
    events = [_event(name, offset) for offset, name in enumerate(names)]
    done: list[str] = []
    tries = [0]

    async def handle(batch: list[Any]) -> None:
        tries[0] += 1
        handled = []
        for event in batch:
            async with record_boundary(letters, "posts", event):
                if event.value.decode() in refused:
                    raise RecordRefused("refused on its own")
                handled.append(event.value.decode())
        if (flaky and tries[0] == 1) or any(e.value.decode() in poison for e in batch):
            raise RuntimeError("the shared work broke")
        done.extend(handled)  # produced

    async with batch_boundary(letters, events):
        await handle_batch(letters, "posts", events, handle)
    written = [DeadLetter.model_validate_json(r.value) for r in outbox.sent]
    return done, written


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=8, unique=True),
    st.sets(st.sampled_from("abcdefgh")),
    st.sets(st.sampled_from("abcdefgh"), max_size=2),
    st.booleans(),
)
async def test_each_record_ends_in_exactly_one_outcome(
    names: list[str], refused: set[str], poison: set[str], flaky: bool
) -> None:
    done, written = await _run(names, refused, poison, flaky)
    lettered = [names[letter.offset] for letter in written]
    assert len(lettered) == len(set(lettered)), "one letter a record, at most"
    for name in names:
        outcomes = (name in set(done)) + (name in lettered)
        assert outcomes == 1, (name, done, lettered)
        if name in refused:
            assert name in lettered
        elif name in poison:
            # The record that breaks the shared work is the one whose outcome it becomes.
            [letter] = [w for w in written if names[w.offset] == name]
            assert "the shared work broke" in letter.reason
        elif flaky and len(names) == 1:
            assert name in lettered  # a batch of one is not tried twice: its letter says why
        else:
            assert name in done  # the others are handled, not dead-lettered with it
