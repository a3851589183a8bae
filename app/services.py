"""The worker's long-lived services, each made once from the settings.

Agents take what they use from here. The composition root (``app/worker.py``) registers each
with Faust, so they start and stop with the worker, and hands them to the web handlers.
"""

from __future__ import annotations

from app.faust_app import settings
from app.kafka.limits import TopicLimits
from app.kafka.outbox import Outbox
from app.keys.replica import KeysReplica
from app.live.hub import LiveHub
from app.ocr.runtime import OcrRuntime
from app.pipeline.dead_letters import DeadLetters
from app.webhooks.service import WebhookDelivery

keys = KeysReplica(settings)
limits = TopicLimits(settings)
outbox = Outbox(settings, limits)
dead_letters = DeadLetters(settings, outbox)
ocr = OcrRuntime(settings, keys.keywords)
live = LiveHub(settings, keys)
webhooks = WebhookDelivery(settings, keys, dead_letters)

# In the order Faust starts them (and stops them the other way round).
ALL = (keys, limits, outbox, dead_letters, ocr, live, webhooks)
