"""Sightings agent: record the addresses candidates show, then pass them on to the filter."""

from __future__ import annotations

from typing import Any

from agents import AgentFun, batches
from app.pipeline.book_keeping import BookKeeper
from app.pipeline.boundary import batch_boundary, shared_work_boundary
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
                # Each record has its own boundary in handle; this one catches an error in the
                # batch's shared work (bundling, producing), as each record's dead letter.
                async with shared_work_boundary(dead_letters, "sightings", events):
                    await keeper.handle(events)

    return record_sightings
