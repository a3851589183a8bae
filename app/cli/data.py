"""``ocrstream post``: put posts on Kafka as users produce them, one from flags or many from a file.

So a newcomer needs no Kafka tools to feed the worker; ``ocrstream tail`` (app/cli/tail.py)
reads back what comes out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from aiokafka import AIOKafkaProducer

from app.cli.errors import UsageError
from app.cli.progress import LineProgress
from app.kafka.security import connection
from app.pipeline.posts import parse_post
from app.pipeline.records import RecordRefused
from app.samples import NAMES as SAMPLE_NAMES
from app.samples import sample_url
from app.settings import Settings, get_settings

T = TypeVar("T")

# Why a bound: acks are awaited in windows, so a long file neither waits on each line nor
# holds every pending send in memory.
_SEND_WINDOW = 500


def broker_settings() -> Settings:
    """Return the settings, refusing a command that needs Kafka when no broker is set."""
    settings = get_settings()
    if not settings.broker:
        raise UsageError("OCRSTREAM_BROKER is not set: which Kafka? (e.g. localhost:9092)")
    return settings


def with_defaults(fields: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Return a post with what was not given filled in: source x, a fresh mid, link, time.

    The link is made where the post's ids name it: X from sid and mid, Telegram from a public
    channel's username and the message number. Elsewhere (Discord, a private Telegram chat) it
    must be given: ``missing_link`` says so.
    """
    post = dict(fields)
    post.setdefault("source", "x")
    post.setdefault("sid", "ocrstream-cli")
    post.setdefault("mid", str(time.time_ns()))
    link = _link_of(post)
    if link is not None:
        post.setdefault("link", link)
    post.setdefault("text", "")
    post.setdefault("images", [])
    post.setdefault("timestamp", (now or datetime.now(UTC)).isoformat())
    return post


# A public Telegram username: 5 to 32 of letters, digits and underscores, starting with a letter.
_TELEGRAM_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{4,31}")


def _link_of(post: dict[str, Any]) -> str | None:
    source, sid, mid = post.get("source"), post.get("sid"), post.get("mid")
    if not isinstance(sid, str) or not isinstance(mid, str):
        return None
    if source == "x":
        return f"https://x.com/{sid}/status/{mid}"
    if source == "telegram" and _TELEGRAM_USERNAME.fullmatch(sid) and mid.isdigit():
        return f"https://t.me/{sid}/{mid}"
    return None


def missing_link(post: dict[str, Any]) -> str | None:
    """Say why a post without a link is refused (a delivery's link could not be made), or None."""
    if post.get("link"):
        return None
    where = (
        "https://discord.com/channels/GUILD/CHANNEL/MESSAGE"
        if post.get("source") == "discord"
        else "https://t.me/CHANNEL/NUMBER, made for you when sid is a public channel's "
        "username and mid the message number"
    )
    return f"a {post.get('source')} post needs its link (the message's URL: {where})"


def json_problem(error: json.JSONDecodeError) -> str:
    """Say in a user's words what is wrong with a line that is not JSON."""
    at = f"column {error.colno}"
    if error.msg.startswith("Invalid control character"):
        if error.doc[error.pos : error.pos + 1] in ("\n", "\r", ""):
            return f"not JSON: a string is not closed before the end of the line ({at})"
        return f"not JSON: a raw tab or control character in a string ({at}); write it as \\t"
    if error.msg.startswith("Unterminated string"):
        return f"not JSON: the string that starts at {at} is not closed"
    if error.msg.startswith("Expecting value") and error.pos == 0:
        return "not JSON: each line must be one JSON object, {...}"
    return f"not JSON: {error.msg.lower()} ({at})"


def post(args: argparse.Namespace) -> int:
    """Produce one post (from flags) or many (``--file``, JSON lines) to the posts topic."""
    settings = broker_settings()
    if args.file is not None:
        if args.text or args.image or args.sample:
            raise UsageError("--file takes the posts from the file: no --text, --image, --sample")
        return _post_file(settings, args.file)
    unknown = [name for name in args.sample if name not in SAMPLE_NAMES]
    if unknown:
        raise UsageError(f"no sample named {unknown[0]!r} (there are: {', '.join(SAMPLE_NAMES)})")
    images = [*args.image, *(sample_url(settings, name) for name in args.sample)]
    fields: dict[str, Any] = {"source": args.source, "sid": args.sid, "text": args.text}
    fields |= {"images": images} | ({"mid": args.mid} if args.mid else {})
    fields |= {"link": args.link} if args.link else {}
    record = with_defaults(fields)
    raw = json.dumps(record).encode()
    try:
        parse_post(raw, settings.max_post_text_chars)  # the worker's own check, said here
    except RecordRefused as exc:
        raise UsageError(str(exc)) from None
    no_link = missing_link(record)
    if no_link is not None:
        raise UsageError(f"{no_link}: give it with --link")

    async def send() -> None:
        async with _producer(settings) as producer:
            await producer.send_and_wait(
                settings.posts_topic, key=str(record["mid"]).encode(), value=raw
            )

    asyncio.run(send())
    print(f"posted {record['source']}:{record['mid']} to {settings.posts_topic}")
    return 0


class _producer:
    """An acks=all producer, started and stopped with ``async with``."""

    def __init__(self, settings: Settings) -> None:
        self._producer = AIOKafkaProducer(**connection(settings), acks="all")

    async def __aenter__(self) -> AIOKafkaProducer:
        await self._producer.start()
        return self._producer

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()


def read_posts(lines: IO[str], max_text_chars: int) -> Iterator[tuple[int, bytes | str, int]]:
    """Yield (line number, the post's bytes or why it is refused, bytes read) for each line.

    Blank lines and ``#`` comments are skipped; missing fields get ``with_defaults``.
    """
    for number, line in enumerate(lines, 1):
        size = len(line.encode())
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            fields = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, json_problem(exc), size
            continue
        if not isinstance(fields, dict):
            yield number, f"not a JSON object but {type(fields).__name__}", size
            continue
        post = with_defaults(fields)
        raw = json.dumps(post).encode()
        try:
            parse_post(raw, max_text_chars)
        except RecordRefused as exc:
            yield number, str(exc), size
            continue
        no_link = missing_link(post)
        if no_link is not None:
            yield number, no_link, size
            continue
        yield number, raw, size


def _post_file(settings: Settings, path: str) -> int:
    """Send every valid line of a JSON-lines file (``-``: stdin); list the refused ones."""
    if path == "-":
        return asyncio.run(_send_lines(settings, sys.stdin, None, "stdin"))
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"no file {path!r}")
    with file.open(encoding="utf-8", errors="replace") as lines:
        return asyncio.run(_send_lines(settings, lines, file.stat().st_size, file.name))


async def _send_lines(settings: Settings, lines: IO[str], total: int | None, name: str) -> int:
    refused: list[tuple[int, str]] = []
    sent = 0
    started = time.monotonic()
    async with _producer(settings) as producer:
        with LineProgress(name, total) as progress:
            pending: list[asyncio.Future[Any]] = []
            for number, post_or_reason, size in read_posts(lines, settings.max_post_text_chars):
                if isinstance(post_or_reason, str):
                    refused.append((number, post_or_reason))
                else:
                    key = str(json.loads(post_or_reason)["mid"]).encode()
                    pending.append(
                        await producer.send(settings.posts_topic, key=key, value=post_or_reason)
                    )
                if len(pending) >= _SEND_WINDOW:
                    sent += await _acked(pending)
                progress.advance(size, sent + len(pending), len(refused))
            sent += await _acked(pending)
            progress.advance(0, sent, len(refused))
    seconds = time.monotonic() - started
    rate = f" ({sent / seconds:,.0f} posts/s)" if seconds > 0 and sent else ""
    print(f"sent {sent:,} posts to {settings.posts_topic} in {seconds:.1f} s{rate}; "
          f"refused {len(refused):,} lines")  # fmt: skip
    for number, reason in refused[:50]:
        print(f"  line {number}: {reason}", file=sys.stderr)
    if len(refused) > 50:
        print(f"  ... and {len(refused) - 50:,} more", file=sys.stderr)
    return 1 if refused else 0


async def _acked(pending: list[asyncio.Future[Any]]) -> int:
    """Wait for the broker's acks of the sends so far; return how many; empty the list."""
    await asyncio.gather(*pending)
    done = len(pending)
    pending.clear()
    return done
