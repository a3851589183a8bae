"""``ocrstream run``, ``worker`` and ``kafka``: the worker, with or without a local broker."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from app.cli.errors import UsageError
from app.settings import get_settings

log = logging.getLogger("ocrstream")


def worker(args: argparse.Namespace) -> int:
    """Run the Faust worker against ``OCRSTREAM_BROKER``."""
    settings = get_settings()
    if not settings.broker:
        raise UsageError("OCRSTREAM_BROKER is not set (or use `ocrstream run`)")
    from app.kafka.admin import ReplicationError, check_replication, ensure_topics
    from app.kafka.first_start_log import explain_coordinator_startup
    from app.kafka.reconnect_log import throttle_reconnect_logs
    from app.keys.sealing import SecretKeyError
    from app.keys.secret_check import check_secret_key
    from app.redact import install_log_redaction
    from app.worker import build_worker  # here: built from the final settings

    install_log_redaction()
    explain_coordinator_startup()
    throttle_reconnect_logs()
    try:
        asyncio.run(check_replication(settings))
        asyncio.run(check_secret_key(settings))
    except (ReplicationError, SecretKeyError) as exc:
        raise UsageError(str(exc)) from None
    # Why before Faust: it declares only the topics it consumes, not those it produces to.
    created = asyncio.run(ensure_topics(settings))
    if created:
        log.info("created topics: %s", ", ".join(created))
    app, agents = build_worker()
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
    from app.keys.sealing import new_secret_key

    path = cache / "secret-key"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        # Why os.open: the file is created readable by its owner only, never for a moment more.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(new_secret_key() + "\n")
    return path


def secret_key(args: argparse.Namespace) -> int:
    """Print a new operator key for OCRSTREAM_SECRET_KEY."""
    from app.keys.sealing import new_secret_key

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

    _stop_on_sigterm()
    settings = get_settings()
    cache = Path(settings.local_kafka_dir) if settings.local_kafka_dir else DEFAULT_CACHE
    if args.brokers > 1:
        cluster = LocalKafkaCluster(
            args.data or cache / f"cluster-{args.brokers}", args.brokers, cache_dir=cache
        )
        cluster.start()
        replicas = min(3, args.brokers)
        print(
            f"Kafka cluster of {args.brokers} ready on {cluster.bootstrap}; Ctrl-C stops it\n"
            f"  workers: OCRSTREAM_BROKER={cluster.bootstrap} OCRSTREAM_TOPIC_REPLICAS="
            f"{replicas} OCRSTREAM_MIN_INSYNC_REPLICAS={min(2, replicas)}",
            flush=True,
        )
        try:
            cluster.node(1).wait()
        except KeyboardInterrupt:
            pass
        finally:
            cluster.stop()
        return 0
    broker = LocalKafka(args.data or cache / "data", port=args.port, cache_dir=cache)
    broker.start()
    print(f"Kafka ready on {broker.bootstrap}; Ctrl-C stops it", flush=True)
    try:
        broker.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0
