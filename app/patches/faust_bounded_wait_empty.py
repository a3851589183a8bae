"""A stopping worker waits for its records in flight for a bounded time, not for ever.

What: when a Faust (0.15.3) worker stops, ``Consumer.wait_empty`` waits for every record
delivered to a stream to be acked, with no bound: it loops while any is unacked and the
consumer itself is not stopping (and the consumer is stopped only after it). A record whose
handling cannot finish (its output held by a broker that is gone, a send retried for ever)
holds the stop until the process is killed.

Seen: a post whose candidate was over Kafka's 1 MB record limit, retried for ever: SIGTERM
logged ``wait_empty: Waiting for tasks`` for 4.5 minutes, then the worker was killed.

Fix: while the app is stopping, give up waiting after ``TIMEOUT_S`` (the worker sets it from
``OCRSTREAM_STOP_TIMEOUT_S``), say what is left, and go on: offsets are committed only up to
the records that were acked (see ``faust_commit_in_flight``), so the records given up on are
read again by the worker that takes their partitions over. During a rebalance the wait is left
as Faust has it: there the worker keeps its other partitions and the records will finish.

Upstream: not reported yet. Report: docs/upstream/faust-wait-empty-unbounded.md. Regression
test: tests/unit/test_patches.py::test_a_stopping_consumer_gives_up_on_a_record_that_never_finishes
(hangs against Faust's own method), and the SIGTERM of tests/integration/test_limits.py.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from faust.transport.consumer import CONSUMER_WAIT_EMPTY, Consumer
from faust.utils.tracing import traced_from_parent_span
from mode import Service

from app.patches import Patch

# Seconds a stopping worker waits for its records in flight (set by the worker from settings).
TIMEOUT_S = 10.0


def configure(timeout_s: float) -> None:
    """Set how long a stopping worker waits for the records it is still handling."""
    global TIMEOUT_S
    TIMEOUT_S = timeout_s


@Service.transitions_to(CONSUMER_WAIT_EMPTY)  # as Faust's own
async def _wait_empty(self: Any) -> None:
    """Wait for all messages that started processing to be acked (bounded while stopping)."""
    wait_count = 0
    T = traced_from_parent_span()
    deadline = time.monotonic() + TIMEOUT_S
    while not self.should_stop and self._unacked_messages:
        if self.app.should_stop and time.monotonic() >= deadline:
            # The fix: a stop is bounded. What is not acked is not committed: read again.
            self.log.warning(
                "wait_empty: gave up after %.0f s on %d record(s) still in flight; the worker "
                "that takes their partitions reads them again",
                TIMEOUT_S,
                len(self._unacked_messages),
            )
            break
        wait_count += 1
        if not wait_count % 10:  # pragma: no cover
            remaining = [(m.refcount, m) for m in self._unacked_messages]
            self.log.warning("wait_empty: Waiting for tasks %r", remaining)
            self.log.info(
                "Agent tracebacks:\n%s",
                self.app.agents.human_tracebacks(),
            )
        self.log.dev("STILL WAITING FOR ALL STREAMS TO FINISH")
        self.log.dev("WAITING FOR %r EVENTS", len(self._unacked_messages))
        gc.collect()
        await T(self.commit)()
        if not self._unacked_messages:
            break
        await T(self._wait_for_ack)(timeout=1)
        self._clean_unacked_messages()

    self.log.dev("COMMITTING AGAIN AFTER STREAMS DONE")
    await T(self.commit_and_end_transactions)()


PATCHES = (
    Patch(
        Consumer,
        "wait_empty",
        _wait_empty,
        upstream_sha256="e4662fe24f094819add590b2d75f233840e77823b432aea6504539768572102f",
    ),
)
