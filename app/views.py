"""Web views beside Faust's own: ``/status`` shows what this worker is doing."""

from __future__ import annotations

from typing import Any

from app.faust_app import app, settings
from app.metrics import metrics
from app.tables import active_keys


@app.page("/status/")
async def status(web: Any, request: Any) -> Any:
    """Return this worker's counters, OCR timings, topics and number of active keys."""
    return web.json(
        {
            "app_id": settings.app_id,
            "topics": {
                "posts": settings.posts_topic,
                "images": settings.images_topic,
                "ocr_result": settings.ocr_result_topic,
                "dead_letter": settings.dead_letter_topic,
                "control": settings.control_topic,
            },
            "active_keys": len(active_keys()),
            **metrics.snapshot(),
        }
    )
