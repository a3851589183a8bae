"""The Faust application of the worker: its class, and how it is made from the settings.

Agents, services, routes and library patches are wired onto it by the composition root,
``app/worker.py``, which only the command line imports; nothing here runs at import.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence

import faust
from mode import ServiceT

from app.kafka.security import faust_credentials
from app.settings import Settings


class OcrstreamApp(faust.App):
    """Faust's app, with the worker's own services started before its agents, stopped after.

    Why: mode starts a service's dependencies in order and stops them in reverse. Services
    registered with ``app.service`` join once the app runs, so they started after the agents
    and stopped before them: an agent could send through an outbox not started yet, or
    already stopped (a batch cut short then). Listed first here (Faust's documented hook for
    more dependencies), they outlive every agent that uses them.
    """

    own_services: Sequence[ServiceT] = ()

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        """Return the worker's own services first, then Faust's (sensors, consumer, agents)."""
        return [*self.own_services, *super().on_init_dependencies()]


def advertised_host(bind: str, advertised: str = "") -> str:
    """Return the host other workers reach this one by: ``advertised``, else the bound one.

    Why not a wildcard: each worker publishes its URL to the others (Faust's canonical URL).
    ``0.0.0.0`` there named every worker alike, so each took itself for the address book's
    holder, and one that was not answered from its empty copy.
    """
    if advertised:
        return advertised
    if bind in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return bind


def new_app(settings: Settings) -> OcrstreamApp:
    """Return the worker's Faust app, configured from ``settings`` (nothing registered yet)."""
    return OcrstreamApp(
        settings.app_id,
        # Why a placeholder: a unit test builds the app without a broker (it never connects).
        broker=settings.broker_url or "kafka://127.0.0.1:9092",
        # Why memory: the only table (keys) is small and is rebuilt from its changelog on start.
        store="memory://",
        # Why not autodiscover: Faust only warns when an agent module fails to import;
        # the worker imports them itself so a broken agent stops the worker at start.
        autodiscover=False,
        # The host in this worker's canonical URL, which the others forward requests to.
        web_host=advertised_host(settings.web_host, settings.web_advertised_host),
        web_port=settings.web_port,
        web_bind=settings.web_host,
        topic_partitions=settings.topic_partitions,
        # Why no standby: a worker whose standby copy of the keys changelog became active in a
        # rebalance (its peer was killed) never finished recovery (faust-streaming 0.15.3): the
        # changelog records it had read as standby were not read again as active, recovery waited
        # for them forever, and every stream partition stayed paused. The keys table is small and
        # read from its changelog in milliseconds; every worker's keys replica reads it anyway.
        table_standby_replicas=0,
        topic_replication_factor=settings.topic_replicas,
        # Why: every record is JSON we validate with pydantic ourselves, so Faust moves bytes.
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        processing_guarantee=settings.processing_guarantee,
        producer_linger=settings.producer_linger_ms / 1000,
        # Why: a worker killed without warning holds its partitions until this runs out.
        broker_session_timeout=settings.session_timeout_s,
        # Why shorter than Faust's 2.8 s: after a crash, what was finished since the last commit is
        # done again (3 kills: 552 repeats at 2.8 s, 306 at 0.5 s; bench/guarantees.py). Each
        # interval costs one commit and, every two, one log-end-offset request.
        broker_commit_interval=settings.commit_interval_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        # TLS and SASL, the same as every other client of the project (app/kafka/security.py).
        broker_credentials=faust_credentials(settings),
    )
