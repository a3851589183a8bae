"""The address book's own work on the text path, in one process, without a broker.

    .venv/bin/python bench/book_cost.py [--posts 30000] [--rounds 5] [--write docs/benchmarks.md]
    .venv/bin/python bench/book_cost.py --takeover 100000 [--windows 3] [--write ...]

The posts agent's work (``PostBatches``) over text-only posts, one in ten naming one of 200
token addresses, with the address book off and on, alternating, in the same run; with it on,
the sightings agent's work (``BookKeeper``) over what the posts agent sent it, batch by batch,
and the copy of the book's first sightings (``KnownAddresses``) reading its changes. CPU per post
of each: what the book adds to the worker's Python work, free of the broker and of the noise
that moves the end-to-end rate of ``bench/text_path.py --address-book`` by 20% between runs of
one code. What it leaves out: Faust's and aiokafka's cost per record (the book adds a sightings
record per posts batch, and a candidates record per sightings batch that had a new address),
and the broker's.

With ``--takeover``: what a full book costs once, when a worker takes its partition over (the
index rebuilt from the tables) and when a worker starts (its copy of the first sightings read).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.pipeline.address_book import AddressBook, BookTable  # noqa: E402
from app.pipeline.book_keeping import BookKeeper  # noqa: E402
from app.pipeline.known_addresses import KnownAddresses  # noqa: E402
from app.pipeline.post_batches import PostBatches  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.ocr_bench import show  # noqa: E402
from bench.text_path import ADDRESSES, text_posts  # noqa: E402
from harness.outbox import RecordingOutbox  # noqa: E402
from harness.variants import attack_address  # noqa: E402
from models.events import Ref  # noqa: E402
from models.sightings import Sighting  # noqa: E402

BATCH = 100  # posts a posts batch holds at this rate (the agent takes what arrived in 5 ms)


class _Letters:
    async def send(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"no post here is dead-lettered: {args[:2]}")


def _events(values: list[bytes]) -> list[Any]:
    now = time.time()
    return [
        SimpleNamespace(
            value=value, key=None, message=SimpleNamespace(partition=i % 4, timestamp=now, offset=i)
        )
        for i, value in enumerate(values)
    ]


async def one_run(posts: list[bytes], book_on: bool) -> dict[str, float]:
    """Return the CPU µs a post of the posts agent's work, and of the sightings agent's.

    Batch by batch, as the worker does: the book records what a posts batch sent it, and the
    copy of the book's first sightings (every worker's) reads the book's changes to them.
    """
    settings = Settings(address_book=book_on)
    known = KnownAddresses(settings)
    known._set_ready()  # its changelog is read from the start here: nothing to catch up
    outbox = RecordingOutbox()
    batches = PostBatches(settings, outbox, _Letters(), known)  # type: ignore[arg-type]
    tables = [BookTable({}, name) for name in ("first_seen", "windows", "authors")]
    book = AddressBook(tables[0], tables[1], tables[2])
    book_outbox = RecordingOutbox()
    keeper = BookKeeper(settings, book, book_outbox, _Letters())  # type: ignore[arg-type]
    events = _events(posts)
    posts_s = book_s = 0.0
    for start in range(0, len(events), BATCH):
        outbox.sent.clear()
        started = time.process_time()
        await batches.handle(events[start : start + BATCH])
        posts_s += time.process_time() - started
        booked = _events([r.value for r in outbox.sent if r.topic == settings.sightings_topic])
        started = time.process_time()
        if booked:
            await keeper.handle(booked)
        for change in book_outbox.sent:
            if change.topic == "first_seen":
                known.apply(change.key, None if change.tombstone else change.value)
        book_outbox.sent.clear()
        book_s += time.process_time() - started
    return {
        "posts": 1e6 * posts_s / len(posts),
        "book": 1e6 * book_s / len(posts),
        "skipped_book": known.skipped_book,
        "through_book": known.through_book,
    }


async def run(n_posts: int, rounds: int) -> dict[str, Any]:
    """Run the work with the book off and on, alternating which goes first."""
    ADDRESSES.extend(attack_address("evm", seed) for seed in range(200))
    posts = text_posts(n_posts, "s")
    await one_run(posts[:2000], True)  # warm: imports, pydantic's first validations
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for round_no in range(rounds):
        for name in ["off", "on"][:: 1 if round_no % 2 == 0 else -1]:
            runs[name].append(await one_run(posts, name == "on"))
            print(f"round {round_no + 1}, book {name}: {runs[name][-1]}", flush=True)
    return {"posts": n_posts, "rounds": rounds, "runs": runs}


def report(f: dict[str, Any]) -> str:
    """Return the markdown section."""
    off, on = f["runs"]["off"], f["runs"]["on"]
    off_posts = statistics.median(r["posts"] for r in off)
    on_posts = statistics.median(r["posts"] for r in on)
    on_book = statistics.median(r["book"] for r in on)
    added = on_posts + on_book - off_posts
    return "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {f['posts']:,}"
            " text-only posts, one in ten naming one of 200 token addresses, in batches of"
            f" {BATCH}; medians of {f['rounds']} rounds, off and on alternating.",
            "",
            f"Command: `.venv/bin/python bench/book_cost.py --posts {f['posts']} --rounds"
            f" {f['rounds']} --write docs/benchmarks.md`",
            "",
            "| CPU µs a post | book off | book on |",
            "|---|---|---|",
            f"| posts agent's work (checks, jobs, candidates; with the book, its addresses) |"
            f" {off_posts:.1f} | {on_posts:.1f} |",
            f"| sightings agent's work (record, mark, pass on), and the copy's reading |"
            f" - | {on_book:.1f} |",
            f"| both | {off_posts:.1f} | {on_posts + on_book:.1f} |",
            "",
            f"The book adds {added:.1f} µs a post. Against the worker's whole CPU a post on the"
            " text path (about 125 µs: `bench/text_path.py` gives it per 1,000 posts), that is"
            f" {100 * added / 125:.0f}%. Of the {on[0]['skipped_book'] + on[0]['through_book']:,}"
            f" posts naming an address, {on[0]['through_book']:,} went through the book (their"
            " address new to it) and the others straight on, marked from the copy of the"
            " book's first sightings (`app/pipeline/known_addresses.py`).",
        ]
    )


def full_book(n_addresses: int, windows: int) -> tuple[AddressBook, list[BookTable], float]:
    """Return a book holding ``n_addresses``, each seen in ``windows`` windows of the last day."""
    now = time.time()
    tables = [BookTable({}, name) for name in ("first_seen", "windows", "authors")]
    book = AddressBook(
        tables[0], tables[1], tables[2], clock=lambda: now, max_addresses=n_addresses,
        new_per_author_per_day=n_addresses,
    )  # fmt: skip
    for n in range(n_addresses):
        ref = Ref(source="x", mid=str(n), sid=f"a{n % 5000}", link="")
        book.record_all(
            Sighting(network="evm", address=f"0x{n:040x}", post=f"x:a:{n}:{w}", ref=ref,
                     at=now - 300.0 * (w * 37 % 288), event_id=f"post:x:{n}:{w}")
            for w in range(windows)
        )  # fmt: skip
    book.take_changes()
    return book, tables, now


def takeover(n_addresses: int, windows: int) -> dict[str, float]:
    """Return the seconds a takeover's index rebuild takes, and a worker's copy's first read."""
    book, tables, _ = full_book(n_addresses, windows)
    started = time.process_time()
    book.reindex()
    reindex_s = time.process_time() - started
    known = KnownAddresses(Settings(address_book_max_addresses=n_addresses))
    started = time.process_time()
    for key, value in tables[0].store.items():
        known.apply(key, value)
    copy_s = time.process_time() - started
    return {
        "addresses": n_addresses,
        "windows": windows,
        "window_records": len(tables[1].store),
        "reindex_s": reindex_s,
        "copy_s": copy_s,
    }


def takeover_report(f: dict[str, Any]) -> str:
    """Return the markdown section of the takeover's figures."""
    return "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: a full book,"
            f" {f['addresses']:,} addresses each seen in {f['windows']} windows of the last day"
            f" ({f['window_records']:,} window records); CPU seconds, one process.",
            "",
            f"Command: `.venv/bin/python bench/book_cost.py --takeover {f['addresses']}"
            f" --windows {f['windows']} --write docs/benchmarks.md`",
            "",
            "| work | CPU s |",
            "|---|---|",
            f"| the holder's index rebuilt from its recovered tables (after a takeover) |"
            f" {f['reindex_s']:.2f} |",
            f"| a worker's copy of the first sightings read from their changelog (at start) |"
            f" {f['copy_s']:.2f} |",
            "",
            "Each runs once, on the event loop, in steps (every 5,000 records, and each"
            " batch the copy's consumer reads) so the worker's web server, live streams and"
            " webhooks go on: the rebuild on the worker that takes the book's partition over"
            " (Faust resumes the worker's streams once it is done; /addresses and /trending"
            " answer 503 meanwhile; other workers and standbys build nothing), the copy's"
            " reading when a worker starts (posts naming an address go through the book until"
            " it is done).",
        ]
    )


def main() -> None:
    """Run and print (and write) the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--takeover", type=int, help="instead: a full book of this many")
    parser.add_argument("--windows", type=int, default=3, help="with --takeover: per address")
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    args = parser.parse_args()
    if args.takeover:
        section = takeover_report(takeover(args.takeover, args.windows))
        show(section, args.write, "The address book's takeover (a full book)")
        return
    figures = asyncio.run(run(args.posts, args.rounds))
    show(report(figures), args.write, "The address book's own work (CPU a post)")


if __name__ == "__main__":
    main()
