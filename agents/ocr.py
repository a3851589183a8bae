"""OCR agent: fetch each image, OCR it off the loop, publish ``ocr_result``."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from app import topics
from app.addresses import extract_addresses
from app.dead_letter import send_dead_letter
from app.faust_app import app, settings
from app.fetch import FetchError
from app.metrics import metrics
from app.ocr.images import ImageError
from app.ocr.pool import OcrPoolError
from app.ocr_runtime import runtime
from models.events import (
    EVENT_ID_HEADER,
    Candidate,
    ImageJob,
    OcrError,
    OcrResult,
    ocr_event_id,
)

log = logging.getLogger(__name__)


async def ocr_job(job: ImageJob) -> OcrResult:
    """Fetch, OCR and extract addresses for one image job."""
    output, _ = await runtime.ocr_url(job.image_url)
    return OcrResult(
        image_url=job.image_url,
        text=output.text,
        ref=job.ref,
        buy_ca=extract_addresses(output.text),
    )


@app.agent(topics.images, concurrency=settings.ocr_concurrency)
async def process_images(stream: Any) -> None:
    """OCR each image job; an image that cannot be read yields an ``ocr_error`` event."""
    async for event in stream.events():
        try:
            job = ImageJob.model_validate_json(event.value)
        except ValidationError as exc:
            await send_dead_letter("ocr", f"invalid image job: {exc.errors()[0]['msg']}", event)
            continue
        event_id = ocr_event_id(job.ref, job.image_url)
        with metrics.tracking(job.image_url[:200], "fetch"):
            await read_image(job, event_id)


async def read_image(job: ImageJob, event_id: str) -> None:
    """OCR one image job and publish its ``ocr_result`` (or its ``ocr_error``)."""
    try:
        result = await ocr_job(job)
    except (FetchError, ImageError, OcrPoolError) as exc:
        metrics.stage("publish error")
        await publish_error(job, exc, event_id)
        return
    metrics.count("ocr_results")
    metrics.stage("publish")
    await topics.ocr_result.send(
        key=job.image_url.encode(),
        value=result.model_dump_json().encode(),
        headers={EVENT_ID_HEADER: event_id.encode()},
    )
    candidate = Candidate(
        event=result.model_dump(mode="json"),
        match_text=f"{job.post_text}\n{result.text}",
        event_id=event_id,
    )
    await topics.candidates.send(
        key=job.ref.mid.encode(), value=candidate.model_dump_json().encode()
    )


async def publish_error(
    job: ImageJob, exc: FetchError | ImageError | OcrPoolError, event_id: str
) -> None:
    """Publish the ``ocr_error`` event of an image that could not be read."""
    metrics.count(f"ocr_errors.{exc.kind}")
    metrics.error("ocr", f"{exc.kind}: {exc} ({job.image_url[:200]})")
    log.info("image not read (%s): %s: %s", exc.kind, job.image_url[:200], exc)
    error = OcrError(image_url=job.image_url, ref=job.ref, error=exc.kind, reason=str(exc))
    # Why Faust's producer (not the dead-letter one): this event is part of the at-least-once
    # contract, "one ocr_result or one ocr_error per image", like ocr_result itself.
    await topics.ocr_error.send(
        key=job.image_url.encode(),
        value=error.model_dump_json().encode(),
        headers={EVENT_ID_HEADER: event_id.encode()},
    )
