"""Posts agent: validate each post, emit one OCR job per image, offer the post to the filter."""

from __future__ import annotations

from typing import Any

from agents import AgentFun, batches
from app.pipeline.boundary import batch_boundary, handle_batch
from app.pipeline.dead_letters import DeadLetters
from app.pipeline.post_batches import PostBatches
from app.settings import PipelineSettings


def posts_agent(
    settings: PipelineSettings, post_batches: PostBatches, dead_letters: DeadLetters
) -> AgentFun:
    """Return the agent that turns each post into image jobs and a delivery candidate."""

    async def process_posts(stream: Any) -> None:
        """Turn each post into image jobs and a delivery candidate."""
        async for events in batches(stream, settings):
            async with batch_boundary(dead_letters, events):
                # Every record ends in one outcome: each has its own boundary, and after an
                # unexpected error in the batch's shared work, each is handled alone in one.
                await handle_batch(dead_letters, "posts", events, post_batches.handle)

    return process_posts
