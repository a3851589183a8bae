"""OCR agent: fetch each image, OCR it off the loop, publish ``ocr_result`` (or ``ocr_error``)."""

from __future__ import annotations

from typing import Any

from agents import AgentFun
from app.pipeline.boundary import batch_boundary, record_boundary
from app.pipeline.dead_letters import DeadLetters
from app.pipeline.image_jobs import ImageJobs


def ocr_agent(jobs: ImageJobs, dead_letters: DeadLetters) -> AgentFun:
    """Return the agent that reads each image job (run ``OCRSTREAM_OCR_CONCURRENCY`` at once)."""

    async def process_images(stream: Any) -> None:
        """OCR each image job; an image that cannot be read yields an ``ocr_error`` event."""
        async for event in stream.events():
            async with batch_boundary(dead_letters, [event]):
                async with record_boundary(dead_letters, "ocr", event):
                    await jobs.handle(event)

    return process_images
