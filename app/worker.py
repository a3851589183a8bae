"""The worker's composition root: library patches, agents, services and web routes, wired once.

Only the command line imports this module (``ocrstream worker``). It is the one place that
knows every part; the parts know only what they use, so nothing imports back into the app
while it is being built.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import pkgutil
import signal
from typing import Any

import faust


def build_worker() -> tuple[faust.App, list[str]]:
    """Patch the libraries, then wire everything onto the Faust app; return it and its agents."""
    from app import patches
    from app.patches import faust_bounded_wait_empty

    # Why first: the patches must be in place before any Kafka client or Faust consumer exists.
    patches.apply_all()

    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    from app import services
    from app.activity import HISTORY_STEP_S
    from app.faust_app import app, settings
    from app.kafka import stall_watch
    from app.keys.admin import KeyAdmin
    from app.tables import keys_table  # noqa: F401  # registers the keys table
    from app.topics import control
    from app.web import context
    from app.web.operator import serve_operator_pages
    from app.web.ratelimit import RateLimiter
    from app.web.routes import install_routes
    from app.web.status import StatusReport

    # Why: with the broker gone, the consumer thread retries its last commit until mode gives
    # up on it after 60 s, so a SIGTERM (or Ctrl-C) took 62 s to stop the worker. Nothing is
    # lost by stopping sooner: offsets not committed are read again (at-least-once).
    AIOKafkaConsumerThread.shutdown_timeout = settings.stop_timeout_s
    # Why: a record whose handling cannot finish (its outputs held by a broker that is gone)
    # must not hold the stop either; it is read again by the next worker.
    faust_bounded_wait_empty.configure(settings.stop_timeout_s)

    agents = _import_agents()
    # Started before the agents, stopped after them (app/faust_app.py).
    app.own_services = services.ALL
    stall_watch.install(app)

    async def send(command: Any) -> None:
        await control.send(key=command.key_id.encode(), value=command.model_dump_json().encode())

    async def lookup(key_id: str) -> Any:
        return services.keys.get(key_id)

    services.webhooks.use_control(send)

    async def send_channel(record: Any) -> None:
        await services.outbox.send_all([record], settings.channel_send_timeout_s)

    services.webhooks.use_channels(send_channel)

    # Faust's web driver here is aiohttp (faust.web.drivers.aiohttp); its typed base class does
    # not name the aiohttp application it holds.
    web_app = app.web.web_app  # type: ignore[attr-defined]
    web_app[context.SETTINGS] = settings
    web_app[context.KEYS] = services.keys
    key_admin = KeyAdmin(settings, send, lookup, settings.keyword_apply_timeout_s, poll_s=0.05)
    web_app[context.KEY_ADMIN] = key_admin
    if settings.telegram_bot_token is not None:
        _read_chat_confirmations(app, settings, key_admin, web_app)
    web_app[context.OCR] = services.ocr
    web_app[context.LIMITER] = RateLimiter(
        settings.rate_limit_per_minute, settings.rate_limit_burst
    )
    web_app[context.LIVE] = services.live
    status = StatusReport(
        app, settings, services.keys, services.ocr, services.live, services.webhooks
    )
    web_app[context.STATUS] = status

    @app.task  # type: ignore[untyped-decorator]  # Faust's is untyped
    async def quiet_ctrl_c() -> None:
        """Make Ctrl-C stop the worker as SIGTERM does (mode prints a banner of -INT- first)."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, os.kill, os.getpid(), signal.SIGTERM)

    @app.timer(HISTORY_STEP_S)  # type: ignore[untyped-decorator]  # Faust's is untyped
    async def dashboard_history() -> None:
        """Add a point to the dashboard's 15-minute history."""
        status.sample()

    install_routes(web_app, app.web.cors)  # type: ignore[attr-defined]  # the aiohttp driver's
    # Faust's aiohttp driver keeps its runner private; the operator listener is one more site.
    serve_operator_pages(web_app, app.web._runner, settings)  # type: ignore[attr-defined]
    # Why: a full collection walked the ~100,000 objects made while building the worker
    # (modules, models, the app) and stalled the stream for 54-68 ms, twice in a minute; moved
    # out of the collector's view, the same collections take 4-7 ms (docs/benchmarks.md).
    gc.freeze()
    return app, agents


def _read_chat_confirmations(app: Any, settings: Any, admin: Any, web_app: Any) -> None:
    """Run the operator's bot: the leader reads chats' /start codes and confirms them."""
    from app import services
    from app.web import context
    from app.webhooks.telegram_chats import BotApi, ChatConfirmations

    bot = BotApi(settings)
    app.own_services = (*app.own_services, bot)
    web_app[context.TELEGRAM] = bot
    confirmations = ChatConfirmations(settings, bot, services.keys, admin)

    # Why on the leader only: Telegram allows one getUpdates poller per bot. Why a 1 s timer:
    # each tick is one long poll of OCRSTREAM_TELEGRAM_POLL_S, so it polls without a pause.
    @app.timer(1.0, on_leader=True)  # type: ignore[untyped-decorator]  # Faust's is untyped
    async def telegram_confirmations() -> None:
        """Read the bot's updates once (a long poll) and confirm chats that sent their code."""
        await services.keys.wait_ready()
        await confirmations.poll_once()


def _import_agents() -> list[str]:
    """Import every module of the ``agents`` package (registering its agents); return names."""
    import agents

    names = [module.name for module in pkgutil.iter_modules(agents.__path__, "agents.")]
    for name in names:
        importlib.import_module(name)
    return names
