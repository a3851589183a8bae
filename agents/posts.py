"""Posts agent: validate each post, emit one OCR job per image, offer the post to the filter."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from app import topics
from app.dead_letter import send_dead_letter
from app.faust_app import app, settings
from app.metrics import metrics
from models.events import Candidate, ImageJob, Ref, post_event_id
from models.posts import Post

log = logging.getLogger(__name__)


def parse_post(raw: bytes) -> Post:
    """Return the validated post; raise ValueError with a readable reason."""
    if len(raw) > settings.max_post_text_chars * 4 + 1_000_000:
        raise ValueError(f"record is {len(raw):,} bytes, too large to be a post")
    try:
        post = Post.model_validate_json(raw)
    except ValidationError as exc:
        raise ValueError(_summarize(exc)) from None
    if len(post.text) > settings.max_post_text_chars:
        limit = settings.max_post_text_chars
        raise ValueError(f"text is {len(post.text):,} characters, over the {limit:,} limit")
    return post


def _summarize(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "record"
        parts.append(f"{where}: {error['msg']}")
    return "invalid post: " + "; ".join(parts)


@app.agent(topics.posts)
async def process_posts(stream: Any) -> None:
    """Turn each post into image jobs and a delivery candidate."""
    async for event in stream.events():
        metrics.count("posts_in")
        try:
            post = parse_post(event.value)
        except ValueError as exc:
            await send_dead_letter("posts", str(exc), event)
            continue
        with metrics.tracking(f"post {post.source}:{post.mid}"[:200], "emit candidate"):
            await emit(post, event)


async def emit(post: Post, event: Any) -> None:
    """Send a post's delivery candidate and one job per image (up to the cap)."""
    await topics.candidates.send(
        key=post.mid.encode(),
        value=Candidate(event=post.event(), match_text=post.text, event_id=post_event_id(post))
        .model_dump_json()
        .encode(),
    )
    metrics.stage("emit image jobs")
    ref = Ref.of(post)
    kept = post.images[: settings.max_images_per_post]
    for url in kept:
        job = ImageJob(image_url=url, ref=ref, post_text=post.text)
        # Why keyed by URL: repeats of one image land on one partition (and one cache).
        await topics.images.send(key=url.encode(), value=job.model_dump_json().encode())
    metrics.count("images_out", len(kept))
    if len(post.images) > len(kept):
        await send_dead_letter(
            "posts",
            f"post has {len(post.images)} images; only the first "
            f"{settings.max_images_per_post} are OCR'd",
            event,
        )
