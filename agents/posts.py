"""Posts agent: validate each post, emit one OCR job per image, offer the post to the filter."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from app import topics
from app.faust_app import app, settings
from app.kafka.outbox import Outgoing
from app.metrics import metrics
from app.pipeline.boundary import record_boundary
from app.pipeline.candidates import bundle_values
from app.pipeline.posts import PostPlan, parse_post, plan_post
from app.pipeline.publish import publish
from app.services import dead_letters
from models.events import EVENT_ID_HEADER, Candidate

log = logging.getLogger(__name__)


@app.agent(topics.posts)
async def process_posts(stream: Any) -> None:
    """Turn each post into image jobs and a delivery candidate."""
    if not settings.batched:
        async for event in stream.events():
            metrics.posts.inc()
            async with record_boundary(dead_letters, "posts", event):
                plan = _plan(event)
                with metrics.tracking(f"post {plan.candidate.event_id}", "emit"):
                    await publish(post_records(plan))
                await _report(plan, event)
        return
    wait_s = settings.batch_wait_ms / 1000
    async for events in stream.take_events(settings.batch_max_records, within=wait_s):
        outgoing: list[Outgoing] = []
        offered: dict[int, list[Candidate]] = defaultdict(list)
        for event in events:
            metrics.posts.inc()
            async with record_boundary(dead_letters, "posts", event):
                plan = _plan(event)
                outgoing.extend(image_records(plan))
                offered[event.message.partition].append(plan.candidate)
                await _report(plan, event)
        outgoing.extend(candidate_bundles(offered))
        with metrics.tracking(f"{len(events)} post(s)", "emit"):
            # The batch is acknowledged when this loop goes on: its outputs are durable first.
            await publish(outgoing)


def _plan(event: Any) -> PostPlan:
    return plan_post(
        parse_post(event.value, settings.max_post_text_chars), settings.max_images_per_post
    )


def post_records(plan: PostPlan) -> list[Outgoing]:
    """Return a post's records: its delivery candidate alone, then its image records."""
    candidate = plan.candidate
    record = Outgoing(
        settings.candidates_topic,
        candidate.event["mid"].encode(),
        candidate.model_dump_json().encode(),
    )
    return [record, *image_records(plan)]


def candidate_bundles(offered: dict[int, list[Candidate]]) -> list[Outgoing]:
    """Return a batch's candidates as bundle records, one series per posts partition."""
    # Why keyed by the posts partition: each partition's posts reach the filter in their order.
    return [
        Outgoing(settings.candidates_topic, f"posts-{partition}".encode(), value)
        for partition, candidates in offered.items()
        for value in bundle_values(candidates)
    ]


def image_records(plan: PostPlan) -> list[Outgoing]:
    """Return a post's image records: its OCR jobs, and an ocr_error per refused image."""
    # Why keyed by URL: repeats of one image land on one partition (and one cache).
    records = [
        Outgoing(settings.images_topic, job.image_url.encode(), job.model_dump_json().encode())
        for job in plan.jobs
    ]
    records += [
        Outgoing(
            settings.ocr_error_topic,
            error.image_url.encode(),
            error.model_dump_json().encode(),
            [(EVENT_ID_HEADER, event_id.encode())],
        )
        for error, event_id in plan.refused
    ]
    return records


async def _report(plan: PostPlan, event: Any) -> None:
    """Count what a post became; dead-letter the note of images past the cap."""
    metrics.image_jobs.inc(len(plan.jobs))
    for error, _ in plan.refused:
        metrics.image_errors.labels(kind="refused").inc()
        metrics.error("posts", error.reason, "refused")
    if plan.overflow is not None:
        await dead_letters.send("posts", plan.overflow, event)
