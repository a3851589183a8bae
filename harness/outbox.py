"""An outbox that keeps what it would produce: the agents' work without a broker."""

from __future__ import annotations

from types import SimpleNamespace

from app.kafka.outbox import Outgoing


class RecordingOutbox:
    """Keeps every record sent (``sent``); each topic takes records up to 1 MB."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

        async def limit(topic: str) -> int:
            return 1_000_000

        self.limits = SimpleNamespace(limit=limit)

    async def send_until_done(self, records: list[Outgoing], timeout_s: float) -> list[Outgoing]:
        """Keep the records; none is refused."""
        self.sent.extend(records)
        return []
