"""One line instead of an ERROR on a fresh Kafka: the group coordinator is not there yet.

On a broker that has never had a consumer group, ``__consumer_offsets`` is created by the first
group lookup, and for a second or two every lookup answers ``CoordinatorNotAvailable``.
aiokafka retries (the error is retriable) but logs each try at ERROR, which is the first thing
a newcomer sees. While the worker is starting, the first such line is rewritten as one INFO
that says what it is and the repeats are dropped; after the grace period it is an ERROR again,
because then a coordinator that stays away is a real fault.
"""

from __future__ import annotations

import logging
import time

GROUP_COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"
_EXPLAINED = (
    "waiting for Kafka's group coordinator (normal on a fresh broker: it is creating "
    "__consumer_offsets); retrying"
)


class CoordinatorStartupFilter(logging.Filter):
    """Explain the start-up ``GroupCoordinatorNotAvailable`` once; keep it an error later."""

    def __init__(self, grace_s: float = 60.0) -> None:
        super().__init__()
        self._until = time.monotonic() + grace_s
        self._explained = False

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False to drop a record; rewrite the first start-up one as INFO."""
        if not record.getMessage().startswith("Group Coordinator Request failed"):
            return True
        if "CoordinatorNotAvailable" not in record.getMessage():
            return True
        if time.monotonic() > self._until:
            return True
        if self._explained:
            return False
        self._explained = True
        record.msg, record.args = _EXPLAINED, ()
        record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def explain_coordinator_startup(grace_s: float = 60.0) -> None:
    """Install the filter on aiokafka's group-coordinator logger (once per process)."""
    logger = logging.getLogger(GROUP_COORDINATOR_LOGGER)
    if not any(isinstance(f, CoordinatorStartupFilter) for f in logger.filters):
        logger.addFilter(CoordinatorStartupFilter(grace_s))
