"""What the web handlers use, handed to them through the aiohttp application (``web.AppKey``).

The composition root (``app/worker.py``) puts each collaborator on the application before the
server starts; a handler takes it from ``request.app[...]``. No handler imports a service, so a
test can serve the handlers with collaborators of its own.
"""

from __future__ import annotations

from aiohttp import web

from app.keys.admin import KeyAdmin
from app.keys.replica import KeysReplica
from app.keys.telegram_chats import BotApi
from app.live.hub import LiveHub
from app.ocr.runtime import OcrRuntime
from app.pipeline.address_book import AddressBooks
from app.settings import Settings
from app.web.ratelimit import RateLimiter
from app.web.status import StatusReport

SETTINGS = web.AppKey("settings", Settings)
KEYS = web.AppKey("keys", KeysReplica)
KEY_ADMIN = web.AppKey("key_admin", KeyAdmin)
OCR = web.AppKey("ocr", OcrRuntime)
LIMITER = web.AppKey("limiter", RateLimiter)
LIVE = web.AppKey("live", LiveHub)
STATUS = web.AppKey("status", StatusReport)
ADDRESSES = web.AppKey("addresses", AddressBooks)
# Only when the operator set a bot token.
TELEGRAM = web.AppKey("telegram", BotApi)
