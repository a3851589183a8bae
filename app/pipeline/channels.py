"""Sends deliveries to channel topics so that one channel's failure costs only that channel.

A channel can fail in ways the sender cannot prevent: a name an older version accepted and
Kafka refuses, a topic that cannot be created, a broker that never answers for it. Each send
is bounded in time; a channel that failed is then skipped at once (its deliveries refused with
the reason) for a while before it is tried again, so a broken channel of one key never holds
the deliveries of the others nor the worker's shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from models.keys import topic_name_problem

log = logging.getLogger(__name__)

Send = Callable[[str, bytes | None, bytes, dict[str, bytes]], Awaitable[Any]]


@dataclass
class _Down:
    until: float
    reason: str
    skipped: int = 0


class ChannelSink:
    """Bounded, isolated sends to named channel topics (see the module docstring)."""

    def __init__(
        self,
        send: Send,
        timeout_s: float,
        retry_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._down: dict[str, _Down] = {}

    async def send(
        self, channel: str, key: bytes | None, value: bytes, headers: dict[str, bytes]
    ) -> str | None:
        """Send one delivery; return None when sent, else why it was not (for its dead letter)."""
        problem = topic_name_problem(channel)
        if problem is not None:
            return f"channel refused: {problem}"
        down = self._down.get(channel)
        if down is not None and self._clock() < down.until:
            down.skipped += 1
            return f"channel {channel} unavailable: {down.reason}"
        try:
            await asyncio.wait_for(self._send(channel, key, value, headers), self._timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = describe_send_error(exc, self._timeout_s)
            self._mark_down(channel, reason, down)
            return f"channel {channel} unavailable: {reason}"
        if down is not None:
            del self._down[channel]
            log.info(
                "channel %s works again (%d deliveries refused meanwhile)", channel, down.skipped
            )
        return None

    def _mark_down(self, channel: str, reason: str, before: _Down | None) -> None:
        skipped = before.skipped if before is not None else 0
        self._down[channel] = _Down(self._clock() + self._retry_after_s, reason, skipped)
        log.warning(
            "channel %s: send failed (%s); its deliveries are refused for %.0f s, then retried",
            channel,
            reason,
            self._retry_after_s,
        )

    def unavailable(self) -> dict[str, str]:
        """Return the channels being skipped now, with why (for /status/)."""
        now = self._clock()
        return {name: down.reason for name, down in self._down.items() if now < down.until}


def describe_send_error(exc: BaseException, timeout_s: float) -> str:
    """Return a short reason for a failed send."""
    if isinstance(exc, TimeoutError):
        return f"the send did not complete within {timeout_s:g} s"
    return f"{type(exc).__name__}: {exc}"[:300]
