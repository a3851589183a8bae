"""``ocrstream keys ...`` and ``ocrstream keywords ...``: key administration from a shell.

The same ``KeyAdmin`` as the HTTP API: commands go to the control topic, and the answer is
read back from the keys changelog once a worker has applied them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from app.cli.errors import UsageError
from app.keys.admin import Change, KeyAdmin, UnknownKeyError, admin_over_kafka
from app.keys.apikeys import MalformedKeyError, key_id_of
from app.keys.changelog import read_keys
from app.keys.commands import ControlError, check_channels, check_webhooks
from app.keys.keywords import KeywordError
from app.pipeline.records import summarize
from app.sealing import SecretKeyError
from app.settings import Settings, get_settings


def _settings() -> Settings:
    settings = get_settings()
    if not settings.broker:
        raise UsageError("OCRSTREAM_BROKER is not set: which Kafka holds the keys?")
    return settings


def _key_id(given: str) -> str:
    if given.startswith("osk_"):
        try:
            return key_id_of(given)
        except MalformedKeyError as exc:
            raise UsageError(str(exc)) from None
    return given


def _run(change: Callable[[KeyAdmin], Awaitable[Change]], show: Callable[[Change], None]) -> int:
    """Make one change through the key admin; say what came of it, or why it was refused."""
    settings = _settings()

    async def go() -> Change:
        return await change(admin_over_kafka(settings))

    try:
        result = asyncio.run(go())
    except (UnknownKeyError, ControlError, KeywordError, SecretKeyError) as exc:
        raise UsageError(str(exc)) from None
    except ValidationError as exc:
        raise UsageError(summarize(exc)) from None
    if result.record is None:
        print("sent; no worker applied it yet (is one running?)", file=sys.stderr)
    show(result)
    return 0


def _print_keywords(change: Change) -> None:
    for word in change.record.keywords if change.record is not None else ():
        print(word)


def keys_create(args: argparse.Namespace) -> int:
    """Create a key and print it (its secret is shown only now)."""
    channels = tuple(args.channel)
    _check(check_channels, channels)

    def show(change: Change) -> None:
        command = change.command
        print(f"key id:   {command.key_id}")
        print(f"api key:  {change.api_key}   (shown only now; store it safely)")
        print(f"channels: {', '.join(getattr(command, 'channels', ()))}")

    return _run(lambda admin: admin.create(args.label, channels), show)


def keys_list(args: argparse.Namespace) -> int:
    """List keys: ids, state, keyword count, channels (never a secret)."""
    records = asyncio.run(read_keys(_settings()))
    for record in sorted(records.values(), key=lambda r: r.created_at):
        state = "revoked" if record.revoked else "active"
        print(
            f"{record.key_id}  {state:7}  keywords={len(record.keywords):3}  "
            f"channels={','.join(record.channels)}  webhooks={len(record.webhooks)}  "
            f"{record.label}"
        )
    return 0


def keys_revoke(args: argparse.Namespace) -> int:
    """Revoke a key."""
    return _run(lambda admin: admin.revoke(_key_id(args.key)), _print_keywords)


def keys_channels(args: argparse.Namespace) -> int:
    """Set a key's channel topics."""
    topics = tuple(args.topics)
    _check(check_channels, topics)
    return _run(lambda admin: admin.set_channels(_key_id(args.key), topics), _print_keywords)


def keys_webhooks(args: argparse.Namespace) -> int:
    """Set a key's webhook URLs; print the signing secret when one is minted."""
    if bool(args.urls) == args.clear:
        raise UsageError("name the webhook URLs, or --clear to remove them all")
    _check(check_webhooks, tuple(args.urls))

    def show(change: Change) -> None:
        for url in args.urls:
            print(url)
        # Printed even when no worker applied it yet: this is the only time it is shown.
        if change.webhook_secret is not None:
            print(
                f"signing secret: {change.webhook_secret}   "
                "(shown only now; verify deliveries with it)"
            )

    return _run(
        lambda admin: admin.set_webhooks(_key_id(args.key), args.urls, args.rotate_secret), show
    )


def keywords_add(args: argparse.Namespace) -> int:
    """Add keywords; print the key's full list."""
    return _run(lambda admin: admin.add_keywords(_key_id(args.key), args.words), _print_keywords)


def keywords_list(args: argparse.Namespace) -> int:
    """List a key's keywords."""
    key_id = _key_id(args.key)
    record = asyncio.run(read_keys(_settings())).get(key_id)
    if record is None:
        raise UsageError(f"unknown key {key_id}")
    for word in record.keywords:
        print(word)
    return 0


def keywords_remove(args: argparse.Namespace) -> int:
    """Remove keywords (all with --all); print what is left."""
    if not args.words and not args.all:
        raise UsageError("name keywords to remove, or --all")
    return _run(
        lambda admin: admin.remove_keywords(_key_id(args.key), args.words, args.all),
        _print_keywords,
    )


def _check(rule: Callable[[Settings, tuple[str, ...]], None], values: tuple[str, ...]) -> None:
    """Apply a rule before anything is sent, so a refusal is a sentence, not a dead letter."""
    try:
        rule(get_settings(), values)
    except ControlError as exc:
        raise UsageError(str(exc)) from None
