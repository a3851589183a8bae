"""Let one log line through per kind and interval, so one fault repeated cannot flood the log."""

from __future__ import annotations

import time
from collections.abc import Callable


class LogThrottle:
    """Lets one log line through per kind per interval, counting the ones held back."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._last: dict[str, tuple[float, int]] = {}

    def allow(self, kind: str) -> int | None:
        """Return None to hold this line back, else how many were held back since the last."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last[0] < self._every_s:
            self._last[kind] = (last[0], last[1] + 1)
            return None
        if len(self._last) > 1000:  # bounded: kinds come from reasons, which vary
            self._last.clear()
        self._last[kind] = (now, 0)
        return last[1] if last is not None else 0
