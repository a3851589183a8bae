"""Send records that cannot be processed to the dead-letter topic, with the reason."""

from __future__ import annotations

import logging
from typing import Any

from app import topics
from app.metrics import metrics
from models.dead_letter import DeadLetter, Stage

log = logging.getLogger(__name__)


async def send_dead_letter(
    stage: Stage,
    reason: str,
    event: Any,
    raw: bytes | str | None = None,
    image_url: str | None = None,
) -> None:
    """Log and publish why a record from ``event`` (a Faust event) was rejected."""
    message = event.message
    letter = DeadLetter(
        stage=stage,
        reason=reason,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        record=DeadLetter.excerpt(raw if raw is not None else event.value),
        image_url=image_url,
    )
    log.warning(
        "dead letter: stage=%s topic=%s partition=%s offset=%s reason=%s",
        stage,
        message.topic,
        message.partition,
        message.offset,
        reason,
    )
    metrics.count(f"dead_letters.{stage}")
    metrics.error(stage, reason)
    # Why wait for the broker's ack: a dead letter is the only trace of a rejected record, and
    # a buffered one was once seen never to arrive; rejects are rare, so waiting costs little.
    pending = await topics.dead_letter.send(
        key=message.key, value=letter.model_dump_json().encode()
    )
    await pending
