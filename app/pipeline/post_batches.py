"""A batch of posts becomes its image jobs and its delivery candidates, produced at once.

Each post is checked (``app/pipeline/posts.py``); its images become OCR jobs (or ``ocr_error``
events when refused) and the post itself a delivery candidate. Candidates travel in bundles,
one series per posts partition, so the filter sees a partition's posts in their order. A post
whose text shows a token address new to the address book goes to the book first (the
sightings topic), which passes it on to the filter marked where it is an address's first
sighting: it reaches the filter after the batch's other posts. One whose addresses the book
holds goes straight on, marked from every worker's copy of the book's first sightings
(``app/pipeline/known_addresses.py``), and the book gets only its sightings, to count. A record
Kafka refuses becomes the dead letter of the post it came from (a sightings record's refusal
costs only the counts: the post is delivered).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from app.kafka.outbox import Outbox, Outgoing
from app.metrics import metrics
from app.ocr.addresses import extract_addresses
from app.ocr.reading import MAX_ADDRESSES
from app.pipeline.boundary import record_boundary
from app.pipeline.candidates import bundle_bytes, bundles
from app.pipeline.dead_letters import DeadLetters
from app.pipeline.known_addresses import KnownAddresses
from app.pipeline.posts import PostPlan, parse_post, plan_post
from app.pipeline.publish import publish
from app.pipeline.sighting_records import not_counted, sighting_records
from app.pipeline.sightings import posted_at
from app.settings import Settings
from models.events import EVENT_ID_HEADER, BuyCa, Candidate
from models.posts import Post
from models.sightings import Sighting

# Which posts a record came from, by the record's id: each post's Faust event, and for a bundle
# the post's candidate (its dead letter shows the candidate's own JSON, not the whole bundle).
Origins = dict[int, list[tuple[Any, Candidate | None]]]


class PostBatches:
    """Turns batches of posts into image jobs and candidates; refusals are dead-lettered."""

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        dead_letters: DeadLetters,
        known: KnownAddresses,
    ) -> None:
        self._settings = settings
        self._outbox = outbox
        self._dead_letters = dead_letters
        self._known = known

    async def handle(self, events: list[Any]) -> None:
        """Turn a batch of posts into their records, produced at once; refusals dead-lettered."""
        outgoing: list[Outgoing] = []
        origins: Origins = {}
        offered: dict[int, list[tuple[Candidate, Any]]] = defaultdict(list)
        # The candidates that show an address new to the book: they go through it first.
        to_book: dict[int, list[tuple[Candidate, Any]]] = defaultdict(list)
        # The sightings of the candidates that skip it (their addresses known): it counts them.
        sighted: list[Sighting] = []
        for event in events:
            metrics.posts.inc()
            async with record_boundary(self._dead_letters, "posts", event):
                post = parse_post(event.value, self._settings.max_post_text_chars)
                # Seconds: Faust gives a message's Kafka time so (None for a test's record).
                at = posted_at(post.timestamp, event.message.timestamp or time.time())
                plan = plan_post(post, self._settings.max_images_per_post, at)
                for record in self.image_records(plan):
                    origins[id(record)] = [(event, None)]
                    outgoing.append(record)
                candidate, shown = plan.candidate, None
                addresses = self._addresses(post)
                if addresses:
                    candidate, shown = self._known.route(candidate, addresses, at)
                if addresses and shown is None:
                    to_book[event.message.partition].append((candidate, event))
                else:
                    offered[event.message.partition].append((candidate, event))
                    sighted.extend(shown or ())
                await self._report(plan, event)
        for topic, candidates in (
            (self._settings.candidates_topic, offered),
            (self._settings.sightings_topic, to_book),
        ):
            if candidates:
                limit = await self._outbox.limits.limit(topic)
                outgoing.extend(
                    self.candidate_bundles(candidates, bundle_bytes(limit), origins, topic)
                )
        counted = await sighting_records(self._settings, self._outbox, sighted)
        outgoing.extend(counted)
        with metrics.tracking(f"{len(events)} post(s)", "emit"):
            # The batch is acknowledged when the agent goes on: its outputs are durable first.
            refused = await publish(self._outbox, outgoing)
        await self._dead_letter(origins, not_counted(refused, counted))

    def _addresses(self, post: Post) -> list[BuyCa]:
        """Return the addresses the post's own text shows (none while the book is off)."""
        if not self._settings.address_book or not post.text:
            return []
        return extract_addresses(post.text)[:MAX_ADDRESSES]

    def candidate_bundles(
        self,
        offered: dict[int, list[tuple[Candidate, Any]]],
        max_bytes: int,
        origins: Origins,
        topic: str,
    ) -> list[Outgoing]:
        """Return a batch's candidates as ``topic`` bundle records, one series per partition.

        Each record's posts go into ``origins``: a bundle Kafka refuses is dead-lettered post by
        post, each letter with its own candidate.
        """
        records = []
        for partition, pairs in offered.items():
            candidates = [candidate for candidate, _ in pairs]
            for value, members in bundles(candidates, max_bytes):
                # Why keyed by the posts partition: its posts reach the filter in their order
                # (the book passes its candidates on under the key they came with).
                key = f"posts-{partition}".encode()
                record = Outgoing(topic, key, value)
                origins[id(record)] = [(pairs[i][1], candidates[i]) for i in members]
                records.append(record)
        return records

    async def _dead_letter(self, origins: Origins, refused: list[Outgoing]) -> None:
        """Make the failure of each refused record the outcome of the posts it came from.

        One dead letter per post, whatever number of its records were refused (its candidate,
        its image jobs): it names each, and shows the candidate's own JSON when only that failed.
        """
        letters: dict[int, tuple[Any, list[str], list[Candidate | None]]] = {}
        for record in refused:
            reason = f"{record.topic} record not produced: {record.error}"
            for event, candidate in origins.get(id(record), ()):
                _, reasons, parts = letters.setdefault(id(event), (event, [], []))
                if reason not in reasons:
                    reasons.append(reason)
                parts.append(candidate)
        for event, reasons, parts in letters.values():
            only = parts[0] if len(parts) == 1 else None
            own = None if only is None else only.model_dump_json().encode()
            await self._dead_letters.send("posts", "; ".join(reasons), event, own)

    def image_records(self, plan: PostPlan) -> list[Outgoing]:
        """Return a post's image records: its OCR jobs, and an ocr_error per refused image."""
        settings = self._settings
        # Why keyed by URL: repeats of one image land on one partition (and one cache).
        records = [
            Outgoing(settings.images_topic, job.image_url.encode(), job.model_dump_json().encode())
            for job in plan.jobs
        ]
        records += [
            Outgoing(
                settings.ocr_error_topic,
                error.image_url.encode(),
                error.model_dump_json().encode(),
                [(EVENT_ID_HEADER, event_id.encode())],
            )
            for error, event_id in plan.refused
        ]
        return records

    async def _report(self, plan: PostPlan, event: Any) -> None:
        """Count what a post became; dead-letter the note of images past the cap."""
        metrics.image_jobs.inc(len(plan.jobs))
        for error, _ in plan.refused:
            metrics.image_errors.labels(kind="refused").inc()
            metrics.error("posts", error.reason, "refused")
        if plan.overflow is not None:
            await self._dead_letters.send("posts", plan.overflow, event)
