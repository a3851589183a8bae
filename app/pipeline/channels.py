"""Which channel topics may take deliveries now: one channel's failure costs only that channel.

A channel can fail in ways the sender cannot prevent: a name an older version accepted and
Kafka refuses, a topic that cannot be created, a broker that never answers for it. Names Kafka
refuses are never sent to. A channel whose send failed is then skipped at once for a while
before it is tried again, so a broken channel of one key never holds the deliveries of the
others nor the worker's shutdown. While skipped, its deliveries are refused with the reason
(dead letters) when the failure was the channel's own; when it was the cluster's (the topic
exists, its leader moved or did not answer in time), they are held instead: handed to the
retry lanes of the webhooks topic, which send them when the leader is back. Pure: the filter
agent sends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from models.keys import topic_name_problem

log = logging.getLogger(__name__)


@dataclass
class _Down:
    until: float
    reason: str
    skipped: int = 0
    transient: bool = False


class ChannelHealth:
    """Remembers failed channels for a while (see the module docstring)."""

    def __init__(self, retry_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._down: dict[str, _Down] = {}

    def refusal(self, channel: str) -> str | None:
        """Return why a delivery to ``channel`` must not be sent now, or None to send it."""
        problem = topic_name_problem(channel)
        if problem is not None:
            return f"channel refused: {problem}"
        down = self._down.get(channel)
        if down is not None and not down.transient and self._clock() < down.until:
            down.skipped += 1
            return f"channel {channel} unavailable: {down.reason}"
        return None

    def held(self, channel: str) -> bool:
        """Tell whether deliveries to ``channel`` go to the retry lanes now (a cluster fault)."""
        down = self._down.get(channel)
        if down is not None and down.transient and self._clock() < down.until:
            down.skipped += 1
            return True
        return False

    def failed(self, channel: str, reason: str, transient: bool = False) -> str:
        """Note that a send to ``channel`` failed; return the reason (for a dead letter)."""
        before = self._down.get(channel)
        if before is None or self._clock() >= before.until:
            skipped = before.skipped if before is not None else 0
            self._down[channel] = _Down(
                self._clock() + self._retry_after_s, reason, skipped, transient
            )
            log.warning(
                "channel %s: send failed (%s); its deliveries are %s for %.0f s, then retried",
                channel,
                reason,
                "held for the retry lanes" if transient else "refused",
                self._retry_after_s,
            )
        return f"channel {channel} unavailable: {reason}"

    def delivered(self, channel: str) -> None:
        """Note that a send to ``channel`` succeeded: a channel that was down works again."""
        down = self._down.pop(channel, None)
        if down is not None:
            log.info(
                "channel %s works again (%d deliveries refused meanwhile)", channel, down.skipped
            )

    def unavailable(self) -> dict[str, str]:
        """Return the channels being skipped now, with why (for /status/)."""
        now = self._clock()
        return {name: down.reason for name, down in self._down.items() if now < down.until}
