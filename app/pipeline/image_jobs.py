"""An image job becomes its ``ocr_result`` (and its delivery candidate), or its ``ocr_error``.

Every image ends in exactly one of the two events, whatever fails while reading it; a record
Kafka will not take (over its topic's limit, say) is the job's dead letter, with the reason.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from app.activity import activity
from app.fetch import FetchError
from app.kafka.outbox import Outbox, Outgoing
from app.metrics import metrics
from app.ocr.images import ImageError
from app.ocr.pool import OcrPoolError
from app.ocr.reading import reading_of
from app.ocr.runtime import OcrRuntime
from app.pipeline.dead_letters import DeadLetters
from app.pipeline.known_addresses import KnownAddresses
from app.pipeline.publish import publish
from app.pipeline.records import decode_record
from app.pipeline.sighting_records import not_counted, sighting_records
from app.redact import redact_text, redact_url
from app.settings import Settings
from models.events import (
    EVENT_ID_HEADER,
    Candidate,
    ErrorKind,
    ImageJob,
    OcrError,
    OcrResult,
    ocr_event_id,
)

log = logging.getLogger(__name__)

# The ocr_error kind of a failure no one foresaw while reading an image (a bug, not the image).
INTERNAL_ERROR: ErrorKind = "internal_error"


class ImageJobs:
    """Reads image jobs and publishes what each became."""

    def __init__(
        self,
        settings: Settings,
        runtime: OcrRuntime,
        outbox: Outbox,
        dead_letters: DeadLetters,
        known: KnownAddresses,
    ) -> None:
        self._settings = settings
        self._runtime = runtime
        self._outbox = outbox
        self._dead_letters = dead_letters
        self._known = known

    async def handle(self, event: Any) -> None:
        """Read one image job record; what Kafka refuses of its outcome is its dead letter."""
        job = decode_record(event.value, ImageJob, "image job")
        # Shown on the dashboard while under way: the post and its image.
        with metrics.tracking(f"{job.ref.source}:{job.ref.mid} {job.image_url}", "fetch"):
            refused = await self.read_image(job, ocr_event_id(job.ref, job.image_url))
        for record in refused:
            # Kafka would not take it (an ocr_error, or the candidate of a post whose text is
            # too long for the topic's limit): the reason is the outcome.
            reason = f"{record.topic} record not produced: {record.error}"
            await self._dead_letters.send("ocr", reason, event, record.value, job.image_url)

    async def read_image(self, job: ImageJob, event_id: str) -> list[Outgoing]:
        """OCR one image job and publish its ``ocr_result`` (or its ``ocr_error``).

        Returns the records Kafka refused, each with its error (for the caller's dead letters).
        """
        settings = self._settings
        try:
            result = await self._read(job, event_id)
        except (FetchError, ImageError, OcrPoolError) as exc:
            metrics.stage("publish error")
            return await self._publish_error(job, exc.kind, str(exc), event_id)
        except Exception as exc:
            # Why here and not only in the boundary: every image must end in an ocr_result or
            # an ocr_error, whatever failed while reading it.
            log.exception("unexpected error reading image %s", redact_url(job.image_url))
            metrics.stage("publish error")
            reason = f"unexpected error reading the image: {type(exc).__name__}: {exc}"[:500]
            return await self._publish_error(job, INTERNAL_ERROR, reason, event_id)
        event = image_event(settings.ocr_result_topic, job, result, event_id)
        too_large = await self._outbox.too_large(event)
        if too_large is not None:
            # Why an ocr_error, not a dead letter: every image ends in one of the two events.
            metrics.stage("publish error")
            reason = f"the ocr_result could not be sent: {too_large}"
            return await self._publish_error(job, "result_too_large", reason, event_id)
        metrics.ocr_results.inc()
        metrics.stage("publish")
        candidate = Candidate(
            event=result.model_dump(mode="json"),
            # The result's own text and QR codes are matched from the event itself.
            match_text=job.post_text,
            event_id=event_id,
            key=job.ref.mid,
        )
        topic, shown = settings.candidates_topic, None
        if settings.address_book and result.buy_ca:
            # Through the address book first when it shows an address new to the book: the
            # book marks the image's first sightings (app/pipeline/known_addresses.py).
            at = job.posted_at if job.posted_at is not None else time.time()
            candidate, shown = self._known.route(candidate, result.buy_ca, at)
            if shown is None:
                topic = settings.sightings_topic
        candidate_record = Outgoing(
            topic, job.ref.mid.encode(), candidate.model_dump_json().encode()
        )
        counted = await sighting_records(settings, self._outbox, shown or [])
        refused = await publish(self._outbox, [event, candidate_record, *counted])
        return not_counted(refused, counted)

    async def _read(self, job: ImageJob, event_id: str) -> OcrResult:
        """Fetch, OCR and extract addresses for one image job (and show it on the dashboard)."""
        image: list[bytes] = []
        output, _ = await self._runtime.ocr_url(job.image_url, fetched=image.append)
        # The reading /ocr and `ocrstream ocr` give too: addresses from text and QR codes.
        result = reading_of(output).result(job.image_url, job.ref)
        activity.result(
            event_id,
            f"{job.ref.source}:{job.ref.mid}",
            job.image_url,
            result.text,
            [f"{ca.network}:{ca.address}" for ca in result.buy_ca],
            image[0] if image else None,
        )
        return result

    async def _publish_error(
        self, job: ImageJob, kind: ErrorKind, reason: str, event_id: str
    ) -> list[Outgoing]:
        """Publish the ``ocr_error`` of an image that could not be read; return it if refused."""
        metrics.image_errors.labels(kind=kind).inc()
        metrics.error("ocr", f"{reason} ({job.image_url})", kind)
        log.info(
            "image not read (%s): %s: %s", kind, redact_url(job.image_url), redact_text(reason)
        )
        error = OcrError(image_url=job.image_url, ref=job.ref, error=kind, reason=reason)
        # Why published like ocr_result (not as a dead letter): this event is part of the
        # at-least-once contract, "one ocr_result or one ocr_error per image".
        topic = self._settings.ocr_error_topic
        return await publish(self._outbox, [image_event(topic, job, error, event_id)])


def image_event(topic: str, job: ImageJob, event: OcrResult | OcrError, event_id: str) -> Outgoing:
    """Return an image's event as a record: keyed by its URL, its idempotency key in a header."""
    return Outgoing(
        topic,
        job.image_url.encode(),
        event.model_dump_json().encode(),
        [(EVENT_ID_HEADER, event_id.encode())],
    )
