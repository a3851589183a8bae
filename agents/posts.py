"""Posts agent: validate each post, emit one OCR job per image, offer the post to the filter."""

from __future__ import annotations

import logging
from typing import Any

from app import topics
from app.faust_app import app, settings
from app.metrics import metrics
from app.pipeline.boundary import record_boundary
from app.pipeline.posts import PostPlan, parse_post, plan_post
from app.services import dead_letters
from models.events import EVENT_ID_HEADER

log = logging.getLogger(__name__)


@app.agent(topics.posts)
async def process_posts(stream: Any) -> None:
    """Turn each post into image jobs and a delivery candidate."""
    async for event in stream.events():
        metrics.posts.inc()
        async with record_boundary(dead_letters, "posts", event):
            post = parse_post(event.value, settings.max_post_text_chars)
            with metrics.tracking(f"post {post.source}:{post.mid}", "emit candidate"):
                await emit(plan_post(post, settings.max_images_per_post), event)


async def emit(plan: PostPlan, event: Any) -> None:
    """Send a post's delivery candidate, its image jobs and its refused images' errors."""
    candidate = plan.candidate
    await topics.candidates.send(
        key=candidate.event["mid"].encode(), value=candidate.model_dump_json().encode()
    )
    metrics.stage("emit image jobs")
    for job in plan.jobs:
        # Why keyed by URL: repeats of one image land on one partition (and one cache).
        await topics.images.send(key=job.image_url.encode(), value=job.model_dump_json().encode())
    metrics.image_jobs.inc(len(plan.jobs))
    for error, event_id in plan.refused:
        metrics.image_errors.labels(kind="refused").inc()
        metrics.error("posts", f"refused: {error.reason}")
        await topics.ocr_error.send(
            key=error.image_url.encode(),
            value=error.model_dump_json().encode(),
            headers={EVENT_ID_HEADER: event_id.encode()},
        )
    if plan.overflow is not None:
        await dead_letters.send("posts", plan.overflow, event)
