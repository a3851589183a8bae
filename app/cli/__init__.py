"""Command line: ``ocrstream run|worker|kafka|keys|keywords|post|tail|ocr`` (or python -m app)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from app.cli.errors import UsageError
from app.kafka.reconnect_log import throttle_reconnect_logs

log = logging.getLogger("ocrstream")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(levelname)s] %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # its INFO is noise in the CLI
    # Why every command: a `tail -f` printed ~40 "Unable connect" lines a second while the
    # broker was down; one per broker per 10 s, as the worker logs them.
    throttle_reconnect_logs()
    try:
        result: int = args.func(args)
        return result
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocrstream", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the worker; start a local Kafka if none is configured")
    run.add_argument("-l", "--loglevel", default="info")
    run.set_defaults(func=_lazy("run", "run"))

    worker = sub.add_parser("worker", help="run the Faust worker against OCRSTREAM_BROKER")
    worker.add_argument("-l", "--loglevel", default="info")
    worker.set_defaults(func=_lazy("run", "worker"))

    kafka = sub.add_parser(
        "kafka", help="run a local Kafka (one node, or --brokers N) in the foreground"
    )
    kafka.add_argument("--port", type=int, default=9092)
    kafka.add_argument("--data", type=Path, default=None, help="data directory")
    kafka.add_argument(
        "--brokers", type=int, default=1, help="a cluster of N nodes (ports chosen free)"
    )
    kafka.add_argument(
        "--secure",
        action="store_true",
        help="SASL_SSL and mutual TLS with a throwaway CA, SCRAM users and ACLs; prints the "
        "worker's settings",
    )
    kafka.set_defaults(func=_lazy("run", "kafka"))

    sub.add_parser(
        "secret-key", help="print a new operator key (OCRSTREAM_SECRET_KEY) that seals secrets"
    ).set_defaults(func=_lazy("run", "secret_key"))

    files = sub.add_parser(
        "kafka-files",
        help="write a secured broker's files for a container (docker-compose.yml, secure)",
    )
    files.add_argument("directory", type=Path)
    files.add_argument("--host", required=True, help="the broker's name in the network")
    files.set_defaults(func=_lazy("run", "kafka_files"))

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys_sub = keys.add_subparsers(required=True, metavar="ACTION")
    create = keys_sub.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--label", default="")
    create.add_argument("--channel", action="append", default=[], help="channel topic (repeat)")
    create.set_defaults(func=_lazy("keys", "keys_create"))
    keys_sub.add_parser("list", help="list keys (ids, never secrets)").set_defaults(
        func=_lazy("keys", "keys_list")
    )
    revoke = keys_sub.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key", help="key id or API key")
    revoke.set_defaults(func=_lazy("keys", "keys_revoke"))
    channels = keys_sub.add_parser("channels", help="set a key's channel topics")
    channels.add_argument("key", help="key id or API key")
    channels.add_argument("topics", nargs="+")
    channels.set_defaults(func=_lazy("keys", "keys_channels"))
    hooks = keys_sub.add_parser(
        "webhooks", help="set a key's webhook URLs (prints the signing secret when minted)"
    )
    hooks.add_argument("key", help="key id or API key")
    hooks.add_argument("urls", nargs="*", metavar="URL")
    hooks.add_argument("--clear", action="store_true", help="remove every webhook of the key")
    hooks.add_argument("--rotate-secret", action="store_true", help="mint a new signing secret")
    hooks.set_defaults(func=_lazy("keys", "keys_webhooks"))

    words = sub.add_parser("keywords", help="manage a key's keywords")
    words_sub = words.add_subparsers(required=True, metavar="ACTION")
    add = words_sub.add_parser("add", help="add keywords; prints the full list")
    add.add_argument("key", help="key id or API key")
    add.add_argument("words", nargs="+")
    add.set_defaults(func=_lazy("keys", "keywords_add"))
    show = words_sub.add_parser("list", help="list a key's keywords")
    show.add_argument("key", help="key id or API key")
    show.set_defaults(func=_lazy("keys", "keywords_list"))
    remove = words_sub.add_parser("remove", help="remove keywords (all with --all)")
    remove.add_argument("key", help="key id or API key")
    remove.add_argument("words", nargs="*")
    remove.add_argument("--all", action="store_true")
    remove.set_defaults(func=_lazy("keys", "keywords_remove"))

    post = sub.add_parser(
        "post", help="produce a post (from flags) or many (--file, JSON lines) to the posts topic"
    )
    post.add_argument("--text", default="", help="the post's text")
    post.add_argument("--image", action="append", default=[], metavar="URL", help="(repeat)")
    post.add_argument(
        "--sample",
        action="append",
        default=[],
        metavar="NAME",
        help="a bundled sample image the worker serves (pepe.png, bonk.jpg; needs "
        "OCRSTREAM_SERVE_SAMPLES, which `ocrstream run` turns on)",
    )
    post.add_argument("--source", default="x", choices=["x", "telegram", "discord"])
    post.add_argument("--mid", default="", help="post id (default: a fresh one)")
    post.add_argument("--sid", default="ocrstream-cli", help="author id")
    post.add_argument("--link", default="", help="the post's link")
    post.add_argument(
        "--file",
        metavar="PATH",
        help="send every line of a JSON-lines file of posts (- for stdin); missing fields "
        "are filled as for one post; refused lines are listed with their reason",
    )
    post.set_defaults(func=_lazy("data", "post"))

    tail = sub.add_parser(
        "tail", help="print the events of a topic or of a key's channel (the last 10, like tail)"
    )
    tail.add_argument("topic", nargs="?", help="e.g. ocr_result, ocr_error, ocrstream-dead-letter")
    tail.add_argument("--key", metavar="KEY_ID", help="read this key's channel topic instead")
    tail.add_argument("--from-beginning", action="store_true", help="every event kept")
    tail.add_argument("--last", type=int, default=10, help="the last N events, in time order")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument("--count", type=int, default=None, help="stop after this many (waits)")
    tail.add_argument("--timeout", type=float, default=None, help="give up after seconds")
    tail.add_argument("--json", action="store_true", help="print each event as it is (JSON)")
    tail.set_defaults(func=_lazy("tail", "tail"))

    ocr = sub.add_parser("ocr", help="OCR image files or URLs and print the text")
    ocr.add_argument("--json", action="store_true", help="one JSON object per image per line")
    ocr.add_argument("images", nargs="+", metavar="PATH_OR_URL")
    ocr.set_defaults(func=_lazy("ocr", "ocr"))
    return parser


def _lazy(module: str, command: str) -> Callable[[argparse.Namespace], int]:
    """Return a handler that imports its module only when its command runs (fast start-up)."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        handler = getattr(importlib.import_module(f"app.cli.{module}"), command)
        result: int = handler(args)
        return result

    return run
