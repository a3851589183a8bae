"""One line per broker per 10 s, not thirty a second, while a broker is down.

aiokafka logs every failed reconnect and every failed fetch to a dead broker at ERROR, about
thirty lines a second per worker until the broker is back (seen with a broker killed in
tests/integration/test_cluster.py). The first line of each kind per broker goes through; the
repeats within 10 s are dropped and counted on the next line that goes through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from app.log_throttle import LogThrottle

# The logger, and the message template whose first argument is the broker's node id.
_NOISY = {
    "aiokafka.client": "Unable connect to node with id %s: %s",
    "aiokafka.consumer.fetcher": "Failed fetch messages from %s: %s",
}
EVERY_S = 10.0


class ReconnectLogThrottle(logging.Filter):
    """Lets one reconnect or fetch failure per broker through per ``EVERY_S``."""

    def __init__(
        self, every_s: float = EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._throttle = LogThrottle(every_s, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False for a repeat within the interval; count the dropped ones on the next."""
        if record.msg not in _NOISY.values() or not isinstance(record.args, tuple):
            return True
        node = record.args[0] if record.args else "?"
        held_back = self._throttle.allow(f"{record.msg}:{node}")
        if held_back is None:
            return False
        if held_back:
            record.msg = f"{record.msg} (and %d more like it in the last {EVERY_S:g} s)"
            record.args = (*record.args, held_back)
        return True


def throttle_reconnect_logs() -> None:
    """Install the throttle on aiokafka's client and fetcher loggers (once per process)."""
    for name in _NOISY:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ReconnectLogThrottle) for f in logger.filters):
            logger.addFilter(ReconnectLogThrottle())
