"""Filter agent: match each delivery candidate against every key and sink it to its channels."""

from __future__ import annotations

from typing import Any

from agents import AgentFun, batches
from app.pipeline.boundary import batch_boundary, shared_work_boundary
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
                # Each candidate has its own boundary in deliver_batch; this one catches an
                # error in the batch's shared work (waiting for keys, sending, settling).
                async with shared_work_boundary(dead_letters, "filter", events):
                    await deliverer.keys_ready()
                    await deliverer.deliver_batch(events)

    return filter_candidates
