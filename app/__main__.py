"""Command line: ``python -m app run|worker|kafka|keys|keywords|ocr`` (see README.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from app.apikeys import MalformedKeyError, key_id_of
from app.settings import Settings, get_settings
from models.keys import ControlCommand, KeyRecord, SetWebhooks

log = logging.getLogger("ocrstream")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(levelname)s] %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # its INFO is noise in the CLI
    try:
        result: int = args.func(args)
        return result
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


class UsageError(Exception):
    """The command cannot be carried out as given; the message tells the user why."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the worker; start a local Kafka if none is configured")
    run.add_argument("-l", "--loglevel", default="info")
    run.set_defaults(func=_cmd_run)

    worker = sub.add_parser("worker", help="run the Faust worker against OCRSTREAM_BROKER")
    worker.add_argument("-l", "--loglevel", default="info")
    worker.set_defaults(func=_cmd_worker)

    kafka = sub.add_parser("kafka", help="run the local single-node Kafka in the foreground")
    kafka.add_argument("--port", type=int, default=9092)
    kafka.add_argument("--data", type=Path, default=None, help="data directory")
    kafka.set_defaults(func=_cmd_kafka)

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys_sub = keys.add_subparsers(required=True, metavar="ACTION")
    create = keys_sub.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--label", default="")
    create.add_argument("--channel", action="append", default=[], help="channel topic (repeat)")
    create.set_defaults(func=_cmd_keys_create)
    keys_sub.add_parser("list", help="list keys (ids, never secrets)").set_defaults(
        func=_cmd_keys_list
    )
    revoke = keys_sub.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key", help="key id or API key")
    revoke.set_defaults(func=_cmd_keys_revoke)
    channels = keys_sub.add_parser("channels", help="set a key's channel topics")
    channels.add_argument("key", help="key id or API key")
    channels.add_argument("topics", nargs="+")
    channels.set_defaults(func=_cmd_keys_channels)
    hooks = keys_sub.add_parser(
        "webhooks", help="set a key's webhook URLs (prints the signing secret when minted)"
    )
    hooks.add_argument("key", help="key id or API key")
    hooks.add_argument("urls", nargs="*", metavar="URL")
    hooks.add_argument("--clear", action="store_true", help="remove every webhook of the key")
    hooks.add_argument("--rotate-secret", action="store_true", help="mint a new signing secret")
    hooks.set_defaults(func=_cmd_keys_webhooks)

    words = sub.add_parser("keywords", help="manage a key's keywords")
    words_sub = words.add_subparsers(required=True, metavar="ACTION")
    add = words_sub.add_parser("add", help="add keywords; prints the full list")
    add.add_argument("key", help="key id or API key")
    add.add_argument("words", nargs="+")
    add.set_defaults(func=_cmd_keywords_add)
    show = words_sub.add_parser("list", help="list a key's keywords")
    show.add_argument("key", help="key id or API key")
    show.set_defaults(func=_cmd_keywords_list)
    remove = words_sub.add_parser("remove", help="remove keywords (all with --all)")
    remove.add_argument("key", help="key id or API key")
    remove.add_argument("words", nargs="*")
    remove.add_argument("--all", action="store_true")
    remove.set_defaults(func=_cmd_keywords_remove)

    ocr = sub.add_parser("ocr", help="OCR image files or URLs and print the text")
    ocr.add_argument("--json", action="store_true", help="one JSON object per image per line")
    ocr.add_argument("images", nargs="+", metavar="PATH_OR_URL")
    ocr.set_defaults(func=_cmd_ocr)
    return parser


# --- running ---------------------------------------------------------------------------------


def _cmd_worker(args: argparse.Namespace) -> int:
    if not get_settings().broker:
        raise UsageError("OCRSTREAM_BROKER is not set (or use `python -m app run`)")
    from app.admin import ensure_topics
    from app.faust_app import app, discover_agents  # here: built from the final settings
    from app.redact import install_log_redaction

    install_log_redaction()
    # Why before Faust: it declares only the topics it consumes, not those it produces to.
    created = asyncio.run(ensure_topics(get_settings()))
    if created:
        log.info("created topics: %s", ", ".join(created))
    log.info("agents: %s", ", ".join(discover_agents()))
    sys.argv = ["python -m app", "worker", "--loglevel", args.loglevel]
    app.main()
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if settings.broker:
        return _cmd_worker(args)
    from app.local_kafka import DEFAULT_CACHE, LocalKafka, port_is_free

    cache = Path(settings.local_kafka_dir) if settings.local_kafka_dir else DEFAULT_CACHE
    broker = LocalKafka(cache / "data", port=9092 if port_is_free(9092) else 0, cache_dir=cache)
    broker.start()
    log.info("started local Kafka on %s; stop with Ctrl-C", broker.bootstrap)
    os.environ["OCRSTREAM_BROKER"] = broker.bootstrap
    get_settings.cache_clear()
    try:
        return _cmd_worker(args)
    finally:
        broker.stop()


def _cmd_kafka(args: argparse.Namespace) -> int:
    from app.local_kafka import DEFAULT_CACHE, LocalKafka

    settings = get_settings()
    cache = Path(settings.local_kafka_dir) if settings.local_kafka_dir else DEFAULT_CACHE
    broker = LocalKafka(args.data or cache / "data", port=args.port, cache_dir=cache)
    broker.start()
    print(f"Kafka ready on {broker.bootstrap}; Ctrl-C stops it", flush=True)
    try:
        assert broker._process is not None
        broker._process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


# --- keys and keywords -------------------------------------------------------------------------


def _admin_settings() -> Settings:
    settings = get_settings()
    if not settings.broker:
        raise UsageError("OCRSTREAM_BROKER is not set: which Kafka holds the keys?")
    return settings


def _check_channels(channels: tuple[str, ...]) -> None:
    from app.control import ControlError, check_channels

    try:
        check_channels(get_settings(), channels)
    except ControlError as exc:
        raise UsageError(str(exc)) from None


def _key_id(given: str) -> str:
    if given.startswith("osk_"):
        try:
            return key_id_of(given)
        except MalformedKeyError as exc:
            raise UsageError(str(exc)) from None
    return given


def _cmd_keys_create(args: argparse.Namespace) -> int:
    from app.admin import create_key, wait_applied

    settings = _admin_settings()
    _check_channels(tuple(args.channel))

    async def go() -> int:
        api_key, command = await create_key(settings, args.label, tuple(args.channel))
        applied = await wait_applied(settings, command.key_id, lambda r: True)
        print(f"key id:   {command.key_id}")
        print(f"api key:  {api_key}   (shown only now; store it safely)")
        print(f"channels: {', '.join(command.channels)}")
        if applied is None:
            print("note: no worker has applied it yet; it will when one runs", file=sys.stderr)
        return 0

    return asyncio.run(go())


def _cmd_keys_list(args: argparse.Namespace) -> int:
    from app.admin import read_keys

    records = asyncio.run(read_keys(_admin_settings()))
    for record in sorted(records.values(), key=lambda r: r.created_at):
        state = "revoked" if record.revoked else "active"
        print(
            f"{record.key_id}  {state:7}  keywords={len(record.keywords):3}  "
            f"channels={','.join(record.channels)}  webhooks={len(record.webhooks)}  "
            f"{record.label}"
        )
    return 0


Built = tuple[ControlCommand, Callable[[KeyRecord], bool]]


def _print_keywords(command: ControlCommand, record: KeyRecord | None) -> None:
    for word in record.keywords if record is not None else ():
        print(word)


def _send_and_wait(
    key: str,
    build: Callable[[KeyRecord], Built],
    show: Callable[[ControlCommand, KeyRecord | None], None] = _print_keywords,
) -> int:
    """Send the command ``build`` makes from the key's record; ``show`` the outcome.

    ``show`` gets the record as applied, or None when no worker applied it in time.
    """
    from app.admin import read_keys, send_command, wait_applied

    settings = _admin_settings()
    key_id = _key_id(key)

    async def go() -> int:
        current = (await read_keys(settings)).get(key_id)
        if current is None:
            raise UsageError(f"unknown key {key_id}")
        command, done = build(current)
        await send_command(settings, command)
        record = await wait_applied(settings, key_id, done)
        if record is None:
            print("sent; no worker applied it yet (is one running?)", file=sys.stderr)
        show(command, record)
        return 0

    return asyncio.run(go())


def _cmd_keys_revoke(args: argparse.Namespace) -> int:
    from models.keys import RevokeKey

    return _send_and_wait(
        args.key, lambda cur: (RevokeKey(key_id=cur.key_id), lambda new: new.revoked)
    )


def _cmd_keys_channels(args: argparse.Namespace) -> int:
    from models.keys import SetChannels

    topics = tuple(args.topics)
    _check_channels(topics)
    return _send_and_wait(
        args.key,
        lambda cur: (
            SetChannels(key_id=cur.key_id, channels=topics),
            lambda new: new.channels == topics,
        ),
    )


def _cmd_keys_webhooks(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from app.control import ControlError, check_webhooks, set_webhooks_command

    if bool(args.urls) == args.clear:
        raise UsageError("name the webhook URLs, or --clear to remove them all")
    try:
        check_webhooks(get_settings(), tuple(args.urls))
    except ControlError as exc:
        raise UsageError(str(exc)) from None

    def build(current: KeyRecord) -> Built:
        try:
            command = set_webhooks_command(current, args.urls, args.rotate_secret)
        except ValidationError as exc:
            raise UsageError(f"invalid webhooks: {exc.errors()[0]['msg']}") from None
        return command, lambda new: new.webhooks == command.urls

    def show(command: ControlCommand, record: KeyRecord | None) -> None:
        assert isinstance(command, SetWebhooks)
        for url in command.urls:
            print(url)
        # Printed even when no worker applied it yet: this is the only time it is shown.
        if command.secret is not None:
            print(f"signing secret: {command.secret}   (shown only now; verify deliveries with it)")

    return _send_and_wait(args.key, build, show)


def _cmd_keywords_add(args: argparse.Namespace) -> int:
    from app.keywords import KeywordError, merge_keywords
    from models.keys import AddKeywords

    def build(current: KeyRecord) -> Built:
        try:
            merged = tuple(merge_keywords(current.keywords, args.words))
        except KeywordError as exc:
            raise UsageError(str(exc)) from None
        command = AddKeywords(key_id=current.key_id, keywords=tuple(args.words))
        return command, lambda new: new.keywords == merged

    return _send_and_wait(args.key, build)


def _cmd_keywords_list(args: argparse.Namespace) -> int:
    from app.admin import read_keys

    record = asyncio.run(read_keys(_admin_settings())).get(_key_id(args.key))
    if record is None:
        raise UsageError(f"unknown key {_key_id(args.key)}")
    for word in record.keywords:
        print(word)
    return 0


def _cmd_keywords_remove(args: argparse.Namespace) -> int:
    from app.keywords import normalize_keyword
    from models.keys import RemoveKeywords

    if not args.words and not args.all:
        raise UsageError("name keywords to remove, or --all")
    gone = {normalize_keyword(w) for w in args.words}

    def build(current: KeyRecord) -> Built:
        command = RemoveKeywords(key_id=current.key_id, keywords=tuple(args.words), all=args.all)
        return command, lambda new: not new.keywords if args.all else not gone & set(new.keywords)

    return _send_and_wait(args.key, build)


# --- OCR ---------------------------------------------------------------------------------------


def _cmd_ocr(args: argparse.Namespace) -> int:
    from app.ocr_cli import run_ocr

    return asyncio.run(run_ocr(args.images, as_json=args.json))


if __name__ == "__main__":
    sys.exit(main())
