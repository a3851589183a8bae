"""``ocrstream run``, ``worker`` and ``kafka``: the worker, with or without a local broker."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from app.cli.errors import UsageError
from app.settings import get_settings

log = logging.getLogger("ocrstream")


def worker(args: argparse.Namespace) -> int:
    """Run the Faust worker against ``OCRSTREAM_BROKER``."""
    settings = get_settings()
    if not settings.broker:
        raise UsageError("OCRSTREAM_BROKER is not set (or use `ocrstream run`)")
    from aiokafka.errors import TopicAuthorizationFailedError

    from app.kafka.access import AccessError, check_access
    from app.kafka.admin import ReplicationError, check_replication, ensure_topics
    from app.kafka.first_start_log import explain_coordinator_startup
    from app.kafka.reconnect_log import throttle_reconnect_logs
    from app.kafka.security import KafkaSecurityError
    from app.keys.secret_check import check_secret_key
    from app.redact import install_log_redaction
    from app.sealing import SecretKeyError
    from app.worker import build_worker  # here: built from the final settings

    install_log_redaction()
    explain_coordinator_startup()
    throttle_reconnect_logs()
    try:
        asyncio.run(check_access(settings))
        asyncio.run(check_replication(settings))
        asyncio.run(check_secret_key(settings))
        # Why before Faust: it declares only the topics it consumes, not those it produces to.
        created = asyncio.run(ensure_topics(settings))
    except (AccessError, KafkaSecurityError, ReplicationError, SecretKeyError) as exc:
        raise UsageError(str(exc)) from None
    except TopicAuthorizationFailedError as exc:
        raise UsageError(
            f"the Kafka principal of this worker may not create its topics ({exc}): grant it "
            'Create on them, or create them first (docs/operations.md, "Production Kafka")'
        ) from None
    if created:
        log.info("created topics: %s", ", ".join(created))
    app, agents = build_worker(settings)
    log.info("agents: %s", ", ".join(agents))
    sys.argv = ["ocrstream", "worker", "--loglevel", args.loglevel]
    app.main()
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the worker; start a local single-node Kafka first when no broker is configured."""
    settings = get_settings()
    if settings.broker:
        return worker(args)
    from app.kafka.local import DEFAULT_CACHE, LocalKafka, port_is_free

    cache = Path(settings.local_kafka_dir) if settings.local_kafka_dir else DEFAULT_CACHE
    broker = LocalKafka(cache / "data", port=9092 if port_is_free(9092) else 0, cache_dir=cache)
    broker.start()
    log.info("started local Kafka on %s; stop with Ctrl-C", broker.bootstrap)
    os.environ["OCRSTREAM_BROKER"] = broker.bootstrap
    # A broker of its own means a first try on this machine: serve the sample images too.
    os.environ.setdefault("OCRSTREAM_SERVE_SAMPLES", "true")
    if settings.secret_key is None and not settings.secret_key_file:
        key_file = local_secret_key(cache)
        os.environ["OCRSTREAM_SECRET_KEY_FILE"] = str(key_file)
        log.info("secrets are sealed with the key in %s (OCRSTREAM_SECRET_KEY_FILE)", key_file)
    get_settings.cache_clear()
    try:
        return worker(args)
    finally:
        broker.stop()


def local_secret_key(cache: Path) -> Path:
    """Return the file of the local broker's operator key, made (readable by owner) if absent."""
    from app.kafka.secure_local import write_private
    from app.sealing import new_secret_key

    path = cache / "secret-key"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        write_private(path, new_secret_key() + "\n")
    return path


def secret_key(args: argparse.Namespace) -> int:
    """Print a new operator key for OCRSTREAM_SECRET_KEY."""
    from app.sealing import new_secret_key

    print(new_secret_key())
    return 0


def _stop_on_sigterm() -> None:
    """Make SIGTERM stop the command as Ctrl-C does (its ``finally`` stops the brokers).

    Why: Python's default for SIGTERM ends the process at once, and the broker JVMs it started
    (sessions of their own) would run on.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def kafka(args: argparse.Namespace) -> int:
    """Run a local Kafka in the foreground: one node, or a cluster with ``--brokers N``."""
    from app.kafka.local import DEFAULT_CACHE, LocalKafka, LocalKafkaCluster
    from app.kafka.secure_local import secure_material

    _stop_on_sigterm()
    settings = get_settings()
    cache = Path(settings.local_kafka_dir) if settings.local_kafka_dir else DEFAULT_CACHE
    # Why apart: a secured node's storage is formatted with its SCRAM users.
    home = cache / "secure" if args.secure else cache
    material = secure_material((args.data or home) / "tls") if args.secure else None
    broker: LocalKafka | LocalKafkaCluster
    if args.brokers > 1:
        broker = LocalKafkaCluster(
            args.data or home / f"cluster-{args.brokers}",
            args.brokers,
            cache_dir=cache,
            secure=material,
        )
        replicas = min(3, args.brokers)
        ready = (
            f"Kafka cluster of {args.brokers} ready on {broker.bootstrap}; Ctrl-C stops it\n"
            f"  workers: OCRSTREAM_TOPIC_REPLICAS={replicas} "
            f"OCRSTREAM_MIN_INSYNC_REPLICAS={min(2, replicas)}"
        )
        node = broker.node(1)
    else:
        broker = LocalKafka(
            args.data or home / "data", port=args.port, cache_dir=cache, secure=material
        )
        ready = f"Kafka ready on {broker.bootstrap}; Ctrl-C stops it"
        node = broker
    # Why start inside: a Ctrl-C while it starts must stop what was started, as later.
    try:
        broker.start()
        if material is not None:
            ready += "\n" + _secured(broker, material, settings, cache)
        elif args.brokers > 1:
            ready += f" OCRSTREAM_BROKER={broker.bootstrap}"
        print(ready, flush=True)
        node.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def _secured(broker: Any, material: Any, settings: Any, cache: Path) -> str:
    """Grant the worker user its ACLs; return the settings to connect with, as lines to print."""
    from app.kafka.acls import worker_acls
    from app.kafka.local import LocalKafkaCluster
    from app.kafka.secure_local import WORKER_USER

    admin_properties = material.admin_properties(broker.bootstrap)
    rules = worker_acls(settings)
    node = broker.node(1) if isinstance(broker, LocalKafkaCluster) else broker
    node.grant_acls(f"User:{WORKER_USER}", rules)
    scram = " ".join(f"{k}={v}" for k, v in material.worker_environment(broker.bootstrap).items())
    mtls = " ".join(
        f"{k}={v}"
        for k, v in {
            "OCRSTREAM_BROKER": broker.tls_bootstrap,
            "OCRSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
            "OCRSTREAM_KAFKA_SSL_CA_LOCATION": material.ca,
            "OCRSTREAM_KAFKA_SSL_CERTIFICATE_LOCATION": material.client_certificate,
            "OCRSTREAM_KAFKA_SSL_KEY_LOCATION": material.client_key,
        }.items()
    )
    return (
        f"  secured: SASL_SSL (SCRAM-SHA-256/512, PLAIN) and mutual TLS, ACLs enforced; user "
        f"{WORKER_USER} holds the {len(rules)} ACLs of a worker with app id {settings.app_id} "
        f"(docs/operations.md)\n"
        f"  worker (SCRAM): {scram}\n"
        f"  worker (mutual TLS): {mtls}\n"
        f"  Kafka's tools as the admin: --command-config {admin_properties}"
    )
