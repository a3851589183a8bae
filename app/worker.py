"""The worker's composition root: everything is built and wired here, once.

Only the command line imports this module (``ocrstream worker``). It is the one place that
knows every part: it makes the Faust app, its topics and the keys table, the long-lived
services, the agents (each handed what it uses) and the web application (its collaborators
put on it as ``web.AppKey``s). The parts know only what they are given, so nothing is built at
import and nothing imports back up into the app (docs/development.md, "Layers").
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from dataclasses import dataclass
from typing import Any

from mode import Service

from agents import AgentFun
from agents.control import control_agent
from agents.filter import filter_agent
from agents.ocr import ocr_agent
from agents.posts import posts_agent
from agents.sightings import sightings_agent
from app.dispatch.service import WebhookDelivery
from app.faust_app import OcrstreamApp, new_app
from app.kafka.limits import TopicLimits
from app.kafka.outbox import Outbox
from app.keys.control import KeyControl
from app.keys.replica import KeysReplica
from app.live.hub import LiveHub
from app.ocr.runtime import OcrRuntime
from app.pipeline.address_book import AddressBook, AddressBooks, BookTable
from app.pipeline.book_keeping import BookKeeper
from app.pipeline.dead_letters import DeadLetters
from app.pipeline.delivery import Deliverer
from app.pipeline.image_jobs import ImageJobs
from app.pipeline.known_addresses import KnownAddresses
from app.pipeline.post_batches import PostBatches
from app.settings import Settings


@dataclass(frozen=True)
class Services:
    """The worker's long-lived services, each made once from the settings."""

    keys: KeysReplica
    limits: TopicLimits
    outbox: Outbox
    dead_letters: DeadLetters
    ocr: OcrRuntime
    live: LiveHub
    webhooks: WebhookDelivery
    # Which addresses the book holds (its changelog's copy): a known one skips the book's hop.
    known: KnownAddresses

    def in_start_order(self) -> tuple[Service, ...]:
        """Return them in the order they start (they stop the other way round)."""
        return (
            self.keys,
            self.limits,
            self.outbox,
            self.dead_letters,
            self.ocr,
            self.live,
            self.webhooks,
            self.known,
        )


def new_services(settings: Settings) -> Services:
    """Make the worker's services, each handed the others it uses."""
    keys = KeysReplica(settings)
    limits = TopicLimits(settings)
    outbox = Outbox(settings, limits)
    dead_letters = DeadLetters(settings, outbox)
    return Services(
        keys=keys,
        limits=limits,
        outbox=outbox,
        dead_letters=dead_letters,
        ocr=OcrRuntime(settings, keys.keywords),
        live=LiveHub(settings, keys),
        webhooks=WebhookDelivery(settings, keys, dead_letters),
        known=KnownAddresses(settings),
    )


@dataclass(frozen=True)
class Pipeline:
    """The Faust app with its topics, table and agents, and the services they use."""

    app: OcrstreamApp
    services: Services
    keys_table: Any
    control_topic: Any
    # First sightings and distinct posts per window of every address (app/pipeline/address_book).
    book: AddressBook
    # The sightings agent's work: the book's writes, and its changelogs.
    keeper: BookKeeper
    # Faust's agents by name (``agents.posts.process_posts`` ...).
    agents: dict[str, Any]


def wire_pipeline(settings: Settings) -> Pipeline:
    """Build the Faust app, its topics and keys table, the services and the agents."""
    app = new_app(settings)
    services = new_services(settings)
    # Started before the agents, stopped after them (app/faust_app.py).
    app.own_services = services.in_start_order()
    # Why internal=True: Faust then creates these topics with our partition count on start.
    posts = app.topic(settings.posts_topic, internal=True)
    images = app.topic(settings.images_topic, internal=True)
    candidates = app.topic(settings.candidates_topic, internal=True)
    # Why one partition: control traffic is tiny and a single partition keeps commands in order.
    control = app.topic(settings.control_topic, internal=True, partitions=1)
    # The keys: per API key, its hash, keywords and channels. One partition: co-partitioned
    # with the control topic, so the worker that consumes commands is the one that owns the
    # table. Faust keeps it in `{app_id}-keys-changelog`; every worker reads keys through the
    # replica, which tails that changelog (app/keys/replica.py says why).
    keys_table = app.Table("keys", partitions=1, key_type=bytes, value_type=bytes)
    # The address book: one partition, co-partitioned with the sightings topic, so one worker
    # holds every address (what /trending ranks) and a successor recovers it from changelogs.
    sightings = app.topic(settings.sightings_topic, internal=True, partitions=1)
    # Why use_partitioner: the expiry timer deletes outside any stream event; with one
    # partition the producer's choice is the table's partition anyway.
    first_seen, windows, authors = (
        app.Table(name, partitions=1, key_type=bytes, value_type=bytes, use_partitioner=True)
        for name in ("address_first_seen", "address_windows", "address_authors")
    )
    # Why the stores: the book writes the changelogs itself, with each batch's records
    # (app/pipeline/address_book.py says why); Faust recovers them on a takeover.
    first_seen_table, windows_table, authors_table = (
        BookTable(table.data, table.changelog_topic.get_topic_name())
        for table in (first_seen, windows, authors)
    )
    book = AddressBook(
        first_seen_table,
        windows_table,
        authors_table,
        max_addresses=settings.address_book_max_addresses,
        forget_after_s=settings.address_book_forget_after_days * 86400,
        new_per_author_per_day=settings.address_book_new_per_author_per_day,
    )

    @first_seen.on_recover
    async def reindex_address_book() -> None:
        """Rebuild the book's index from its tables once they are recovered (a takeover).

        Only where the book is held: a standby's tables, or a worker's that lost the book,
        answer nothing, and rebuilding a full book is seconds of CPU (every rebalance).
        """
        try:
            held = _book_holder(app) is None
        except KeyError:
            held = True  # no assignment known: rebuild, as a holder must
        if held:
            book.start_rebuild()  # in the background: its users wait for it
        else:
            book.forget_index()

    dead_letters = services.dead_letters
    if first_seen_table.changelog != settings.address_first_seen_changelog_topic:
        # Why checked: every worker's copy of the book reads this changelog by its name.
        raise RuntimeError(f"address book changelog is {first_seen_table.changelog}")
    batches = PostBatches(settings, services.outbox, dead_letters, services.known)
    jobs = ImageJobs(settings, services.ocr, services.outbox, dead_letters, services.known)
    deliverer = Deliverer(settings, services.keys, services.outbox, dead_letters)
    keeper = BookKeeper(settings, book, services.outbox, dead_letters)
    registered = [
        _agent(app, posts, posts_agent(settings, batches, dead_letters), "posts"),
        _agent(
            app,
            images,
            ocr_agent(jobs, dead_letters),
            "ocr",
            concurrency=settings.ocr_concurrency,
        ),
        _agent(app, candidates, filter_agent(settings, deliverer, dead_letters), "filter"),
        _agent(
            app, control, control_agent(KeyControl(settings, keys_table), dead_letters), "control"
        ),
        _agent(app, sightings, sightings_agent(settings, keeper, dead_letters), "sightings"),
    ]
    agents = {a.name: a for a in registered}
    return Pipeline(app, services, keys_table, control, book, keeper, agents)


def _agent(app: OcrstreamApp, topic: Any, fun: AgentFun, module: str, **options: Any) -> Any:
    """Register ``fun`` as an agent of ``topic``, named after its module and function."""
    name = f"agents.{module}.{getattr(fun, '__name__', module)}"
    return app.agent(topic, name=name, **options)(fun)


def build_worker(settings: Settings) -> tuple[OcrstreamApp, list[str]]:
    """Patch the libraries, then build and wire the whole worker; return its app and agents."""
    from app import patches
    from app.patches import faust_bounded_wait_empty

    # Why first: the patches must be in place before any Kafka client or Faust consumer exists.
    patches.apply_all()

    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    from app.kafka import stall_watch

    # Why: with the broker gone, the consumer thread retries its last commit until mode gives
    # up on it after 60 s, so a SIGTERM (or Ctrl-C) took 62 s to stop the worker. Nothing is
    # lost by stopping sooner: offsets not committed are read again (at-least-once).
    AIOKafkaConsumerThread.shutdown_timeout = settings.stop_timeout_s
    # Why: a record whose handling cannot finish (its outputs held by a broker that is gone)
    # must not hold the stop either; it is read again by the next worker.
    faust_bounded_wait_empty.configure(settings.stop_timeout_s)

    pipeline = wire_pipeline(settings)
    app = pipeline.app
    stall_watch.install(app)
    _wire_web(pipeline, settings)

    @app.task  # type: ignore[untyped-decorator]  # Faust's is untyped
    async def quiet_ctrl_c() -> None:
        """Make Ctrl-C stop the worker as SIGTERM does (mode prints a banner of -INT- first)."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, os.kill, os.getpid(), signal.SIGTERM)

    # Why: a full collection walked the ~100,000 objects made while building the worker
    # (modules, models, the app) and stalled the stream for 54-68 ms, twice in a minute; moved
    # out of the collector's view, the same collections take 4-7 ms (docs/benchmarks.md).
    gc.freeze()
    return app, sorted(pipeline.agents)


def _wire_web(pipeline: Pipeline, settings: Settings) -> None:
    """Put the web handlers' collaborators on the aiohttp app; add routes and operator pages."""
    from app.activity import HISTORY_STEP_S
    from app.keys.admin import KeyAdmin
    from app.web import context
    from app.web.operator import serve_operator_pages
    from app.web.ratelimit import RateLimiter
    from app.web.routes import install_routes
    from app.web.status import StatusReport

    app, services = pipeline.app, pipeline.services
    control = pipeline.control_topic

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
        _read_chat_confirmations(app, settings, services.keys, key_admin, web_app)
    web_app[context.OCR] = services.ocr
    web_app[context.LIMITER] = RateLimiter(
        settings.rate_limit_per_minute, settings.rate_limit_burst
    )
    web_app[context.LIVE] = services.live
    books = AddressBooks(pipeline.book, lambda: _book_holder(app), settings.address_book)
    web_app[context.ADDRESSES] = books
    status = StatusReport(
        app,
        settings,
        services.keys,
        services.ocr,
        services.live,
        services.webhooks,
        books,
        services.known,
    )
    web_app[context.STATUS] = status

    @app.timer(60.0)  # type: ignore[untyped-decorator]  # Faust's is untyped
    async def expire_address_windows() -> None:
        """Delete the book's windows older than a day and the addresses unseen too long."""
        # Why only on the holder: another worker's copy is a standby; its deletions would
        # reach the changelog the holder recovers from.
        if books.held_here():
            await pipeline.keeper.expire()

    @app.timer(HISTORY_STEP_S)  # type: ignore[untyped-decorator]  # Faust's is untyped
    async def dashboard_history() -> None:
        """Add a point to the dashboard's 15-minute history."""
        status.sample()

    install_routes(web_app, app.web.cors)  # type: ignore[attr-defined]  # the aiohttp driver's
    # Faust's aiohttp driver keeps its runner private; the operator listener is one more site.
    serve_operator_pages(web_app, app.web._runner, settings)  # type: ignore[attr-defined]


def _book_holder(app: OcrstreamApp) -> str | None:
    """Return the base URL of the worker holding the address book; None when it is this one.

    Raises KeyError while no worker holds it (Faust's assignor has no metadata yet).
    """
    url = app.router.key_store("address_first_seen", b"")
    mine = app.conf.canonical_url
    return None if (url.host, url.port) == (mine.host, mine.port) else str(url)


def _read_chat_confirmations(
    app: OcrstreamApp, settings: Settings, keys: KeysReplica, admin: Any, web_app: Any
) -> None:
    """Run the operator's bot: the leader reads chats' /start codes and confirms them."""
    from app.keys.telegram_chats import BotApi, ChatConfirmations
    from app.web import context

    bot = BotApi(settings)
    app.own_services = (*app.own_services, bot)
    web_app[context.TELEGRAM] = bot
    confirmations = ChatConfirmations(settings, bot, keys, admin)

    # Why on the leader only: Telegram allows one getUpdates poller per bot. Why a 1 s timer:
    # each tick is one long poll of OCRSTREAM_TELEGRAM_POLL_S, so it polls without a pause.
    @app.timer(1.0, on_leader=True)  # type: ignore[untyped-decorator]  # Faust's is untyped
    async def telegram_confirmations() -> None:
        """Read the bot's updates once (a long poll) and confirm chats that sent their code."""
        await keys.wait_ready()
        await confirmations.poll_once()
