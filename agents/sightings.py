"""Sightings agent: record each address a post or an image showed in the address book."""

from __future__ import annotations

from typing import Any

from agents import AgentFun, batches
from app.pipeline.address_book import AddressBook
from app.pipeline.boundary import batch_boundary, record_boundary
from app.pipeline.dead_letters import DeadLetters
from app.pipeline.records import decode_record
from app.settings import PipelineSettings
from models.sightings import SightingBundle


def sightings_agent(
    settings: PipelineSettings, book: AddressBook, dead_letters: DeadLetters
) -> AgentFun:
    """Return the agent that keeps first sightings and posts per window of every address."""

    async def record_sightings(stream: Any) -> None:
        """Record each sighting (first seen, distinct posts per 5-minute window)."""
        async for events in batches(stream, settings):
            async with batch_boundary(dead_letters, events):
                read: list[tuple[Any, SightingBundle]] = []
                for event in events:
                    async with record_boundary(dead_letters, "sightings", event):
                        bundle = decode_record(event.value, SightingBundle, "sightings bundle")
                        read.append((event, bundle))
                try:
                    book.record_all([s for _, bundle in read for s in bundle.sightings])
                except Exception:
                    # A bug met by the batch: record each record alone, so only its own fails.
                    for event, bundle in read:
                        async with record_boundary(dead_letters, "sightings", event):
                            book.record_all(bundle.sightings)

    return record_sightings
