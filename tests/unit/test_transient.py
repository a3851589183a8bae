"""Transient Kafka errors are run again, for a bounded time; any other error at once."""

from __future__ import annotations

import time

import pytest
from aiokafka.errors import LeaderNotAvailableError, TopicAuthorizationFailedError

from app.pipeline.transient import is_transient, retried


def test_what_counts_as_transient() -> None:
    assert is_transient(LeaderNotAvailableError()) and is_transient(TimeoutError())
    assert not is_transient(TopicAuthorizationFailedError()) and not is_transient(ValueError())


async def test_a_transient_error_is_run_again_until_it_passes() -> None:
    calls: list[float] = []

    async def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise LeaderNotAvailableError()
        return "created"

    assert await retried(flaky, bound_s=5, what="test") == "created"
    assert len(calls) == 3 and calls[2] - calls[1] > calls[1] - calls[0]  # backing off


async def test_other_errors_are_raised_at_once_and_transient_ones_after_the_bound() -> None:
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise TopicAuthorizationFailedError()

    with pytest.raises(TopicAuthorizationFailedError):
        await retried(refused, bound_s=5, what="test")
    assert calls == 1

    async def never() -> None:
        raise LeaderNotAvailableError()

    started = time.monotonic()
    with pytest.raises(LeaderNotAvailableError):
        await retried(never, bound_s=1.0, what="test")
    assert 0.5 < time.monotonic() - started <= 1.0
