"""Filter agent: match each delivery candidate against every key and sink it to its channels."""

from __future__ import annotations

from typing import Any

from agents import AgentFun, batches
from app.pipeline.boundary import batch_boundary, handle_batch
from app.pipeline.dead_letters import DeadLetters
from app.pipeline.delivery import Deliverer
from app.settings import PipelineSettings


def filter_agent(
    settings: PipelineSettings, deliverer: Deliverer, dead_letters: DeadLetters
) -> AgentFun:
    """Return the agent that delivers each candidate to the keys it matches."""

    async def filter_candidates(stream: Any) -> None:
        """Deliver each candidate to the channel topics (and webhooks) of the keys it matches."""
        async for events in batches(stream, settings):
            async with batch_boundary(dead_letters, events):
                # Every record ends in one outcome: each has its own boundary, and after an
                # unexpected error in the batch's shared work, each is handled alone in one.
                await handle_batch(dead_letters, "filter", events, deliverer.deliver_batch)

    return filter_candidates
