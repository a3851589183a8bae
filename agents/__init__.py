"""Faust agents, one module each (posts, ocr, filter, control): thin loops over a stream.

Each module has a function that takes what its agent uses and returns the agent's function;
the worker (``app/worker.py``) registers it on the Faust app with its topic. The work itself is
in ``app/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from app.settings import PipelineSettings

# What Faust runs for an agent: a coroutine function of the agent's stream.
AgentFun = Callable[[Any], Awaitable[None]]


def batches(stream: Any, settings: PipelineSettings) -> AsyncIterator[list[Any]]:
    """Return the stream's events in batches: up to the batch size, within the batch wait."""
    wait_s = settings.batch_wait_ms / 1000
    events: AsyncIterator[list[Any]] = stream.take_events(settings.batch_max_records, within=wait_s)
    return events
