"""What one post becomes: its delivery candidate, its image jobs, an error per refused image.

Pure: the posts agent sends what these functions return.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.pipeline.records import RecordRefused, check_present, decode_record
from models.events import Candidate, ImageJob, OcrError, Ref, ocr_event_id, post_event_id
from models.posts import Post

# Why: a post is text and a few URLs; a record far past the text limit is not one, and is
# refused before it is parsed.
_RECORD_SLACK_BYTES = 1_000_000


def parse_post(raw: bytes | None, max_text_chars: int) -> Post:
    """Return the validated post; raise RecordRefused with a readable reason."""
    raw = check_present(raw, "a post")
    if len(raw) > max_text_chars * 4 + _RECORD_SLACK_BYTES:
        raise RecordRefused(f"record is {len(raw):,} bytes, too large to be a post")
    post = decode_record(raw, Post, "post")
    if len(post.text) > max_text_chars:
        raise RecordRefused(
            f"text is {len(post.text):,} characters, over the {max_text_chars:,} limit"
        )
    return post


@dataclass
class PostPlan:
    """What one post becomes: its candidate, its image jobs, and an error per refused image."""

    candidate: Candidate
    jobs: list[ImageJob] = field(default_factory=list)
    refused: list[tuple[OcrError, str]] = field(default_factory=list)  # (event, its event id)
    # Set when the post has more images than are read: the dead letter's reason.
    overflow: str | None = None


def plan_post(post: Post, max_images: int, posted_at: float | None = None) -> PostPlan:
    """Return the records a post turns into (pure: the agent only sends them).

    ``posted_at`` is the post's time (app/pipeline/sightings.py), carried by its image jobs.
    """
    ref = Ref.of(post)
    plan = PostPlan(
        # The post's text is matched as the event's own text, not carried a second time.
        candidate=Candidate(event=post.event(), event_id=post_event_id(post), key=post.mid)
    )
    plan.jobs = [
        ImageJob(image_url=url, ref=ref, post_text=post.text, posted_at=posted_at)
        for url in post.images[:max_images]
    ]
    plan.refused = [
        (
            OcrError(image_url=image.url, ref=ref, error="refused", reason=image.reason),
            ocr_event_id(ref, image.url),
        )
        for image in post.refused_images[:max_images]
    ]
    dropped = len(post.images) - len(plan.jobs) + len(post.refused_images) - len(plan.refused)
    if dropped:
        plan.overflow = (
            f"post has {len(post.images) + len(post.refused_images)} images; only the first "
            f"{max_images} are OCR'd ({dropped} not read)"
        )
    return plan
