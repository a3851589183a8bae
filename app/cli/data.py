"""``ocrstream post`` and ``ocrstream tail``: put posts on Kafka, read what comes out.

So a newcomer needs no Kafka tools: posts go to the posts topic as users produce them (one
from flags, or many from a JSON-lines file), and any topic (``ocr_result``, ``ocr_error``, the
dead letters, a key's channel) can be read back, one line per event.
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

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.cli.errors import UsageError
from app.cli.progress import LineProgress
from app.kafka.admin import ready_partitions
from app.kafka.consumers import stop_consumer
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


def _settings() -> Settings:
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
    settings = _settings()
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


def tail(args: argparse.Namespace) -> int:
    """Print events of a topic (or a key's channel), one line each; see ``--follow``."""
    settings = _settings()
    if (args.topic is None) == (args.key is None):
        raise UsageError("name a topic, or a key with --key (its channel topic)")
    topic = args.topic or settings.channel_topic(args.key)
    return asyncio.run(_tail(settings, topic, args))


async def _tail(settings: Settings, topic: str, args: argparse.Namespace) -> int:
    waits = bool(args.follow or args.count)
    partitions = await _partitions(settings, topic, args.timeout if waits else 0.0)
    if not partitions:
        raise UsageError(f"no topic {topic!r} on {settings.broker} (yet?)")
    consumer = AIOKafkaConsumer(**connection(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        begins = await consumer.beginning_offsets(assigned)
        # Like tail(1), about the last --last events, spread over the partitions; or all.
        each = -(-args.last // len(assigned)) if args.last > 0 else 0
        for tp in assigned:
            consumer.seek(
                tp, begins[tp] if args.from_beginning else max(begins[tp], ends[tp] - each)
            )
        # Without --follow or --count: what is there now, then stop.
        return await _print_events(consumer, args, None if waits else ends)
    finally:
        await stop_consumer(consumer)


async def _partitions(settings: Settings, topic: str, wait_s: float | None) -> list[int]:
    """Return the topic's partitions, waiting up to ``wait_s`` (None: ever) for it to exist.

    Why wait: a key's channel topic is created by its first delivery, which a ``--count`` or
    ``--follow`` tail started right after the key is waiting for.
    """
    deadline = None if wait_s is None else time.monotonic() + wait_s
    said = False
    admin = AIOKafkaAdminClient(**connection(settings))
    await admin.start()
    try:
        while not (partitions := await ready_partitions(admin, topic)):
            if deadline is not None and time.monotonic() >= deadline:
                return []
            if not said:
                print(f"waiting for topic {topic!r} (created by its first event)", file=sys.stderr)
                said = True
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    return partitions


async def _print_events(
    consumer: AIOKafkaConsumer, args: argparse.Namespace, ends: dict[TopicPartition, int] | None
) -> int:
    shown = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while args.count is None or shown < args.count:
        if ends is not None and await _reached(consumer, ends):
            return 0
        if deadline is not None and time.monotonic() > deadline:
            print(f"no more events within {args.timeout:g} s", file=sys.stderr)
            return 1
        batch = await consumer.getmany(timeout_ms=500)
        for messages in batch.values():
            for message in messages:
                print(event_line(message.timestamp, message.value, args.json), flush=True)
                shown += 1
                if args.count is not None and shown >= args.count:
                    return 0
    return 0


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Return whether every partition was read up to the end it had when the tail began."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def event_line(timestamp_ms: int, value: bytes | None, as_json: bool) -> str:
    """Return one event as a line: its JSON, or time, source, post, addresses, keywords, text."""
    if value is None:
        return "(null record)"
    if as_json:
        return value.decode(errors="replace")
    try:
        event: Any = json.loads(value)
    except ValueError:
        return value[:200].decode(errors="replace")
    if not isinstance(event, dict):
        return value[:200].decode(errors="replace")
    at = datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%H:%M:%S")
    source = str(event.get("source", "?"))
    ref = event.get("ref") or event
    post_id = f"{ref.get('source', '?')}:{ref.get('mid', '?')}" if isinstance(ref, dict) else "?"
    parts = [at, f"{source:<11}", post_id]
    addresses = [
        f"{ca.get('network')}:{ca.get('address')}" for ca in _list(event.get("buy_ca"), dict)
    ]
    if addresses:
        parts.append("CA " + " ".join(addresses))
    keywords = _list(event.get("keyword_matches"), str)
    if keywords:
        parts.append("keywords " + ",".join(keywords))
    if source == "ocr_error":
        text = f"{event.get('error')}: {event.get('reason')}"
    elif source == "dead_letter":
        text = f"{event.get('stage')}: {event.get('reason')}"
    else:
        text = str(event.get("text") or "")
    text = text.replace("\n", " ⏎ ")
    parts.append(text[:80] + ("…" if len(text) > 80 else ""))
    return "  ".join(parts)


def _list(value: object, kind: type[T]) -> list[T]:
    """Return the items of ``kind`` in ``value`` if it is a list (a topic may hold any record)."""
    return [item for item in value if isinstance(item, kind)] if isinstance(value, list) else []
