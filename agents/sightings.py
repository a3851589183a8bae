"""Sightings agent: record the addresses candidates show, then pass them on to the filter."""

from __future__ import annotations

from typing import Any

from agents import AgentFun, batches
from app.pipeline.book_keeping import BookKeeper
from app.pipeline.boundary import batch_boundary, handle_batch
from app.pipeline.dead_letters import DeadLetters
from app.settings import PipelineSettings


def sightings_agent(
    settings: PipelineSettings, keeper: BookKeeper, dead_letters: DeadLetters
) -> AgentFun:
    """Return the agent that keeps the address book and marks first sightings."""

    async def record_sightings(stream: Any) -> None:
        """Record each sighting (first seen, distinct posts per window); pass candidates on."""
        async for events in batches(stream, settings):
            async with batch_boundary(dead_letters, events):
                # Every record ends in one outcome: each has its own boundary, and after an
                # unexpected error in the batch's shared work, each is handled alone in one.
                await handle_batch(dead_letters, "sightings", events, keeper.handle)

    return record_sightings
