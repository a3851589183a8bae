"""The one error the command line reports as a sentence (exit status 2), not a traceback."""

from __future__ import annotations


class UsageError(Exception):
    """The command cannot be carried out as given; the message tells the user why."""
