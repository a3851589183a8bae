"""Progress of a long file being sent: a bar with rate and ETA on a terminal, lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

# Why every 5 s off a terminal: a CI log or a redirected stderr still shows that work moves,
# without a line per post.
_PLAIN_EVERY_S = 5.0


class LineProgress:
    """Shows bytes read of ``total`` (None: stdin, no ETA), posts sent and lines refused."""

    def __init__(self, name: str, total: int | None) -> None:
        self._name = name
        self._total = total
        self._progress: Any = None
        self._task: Any = None
        self._started = time.monotonic()
        self._last_plain = self._started

    def __enter__(self) -> LineProgress:
        # Imported here: `rich` costs ~60 ms of start-up that one post does not need.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        if console.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[sent]:,} sent · {task.fields[rate]:,.0f}/s"),
                TextColumn("{task.fields[refused]:,} refused"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self._name, total=self._total, sent=0, rate=0.0, refused=0
            )
        return self

    def advance(self, size: int, sent: int, refused: int) -> None:
        """Count ``size`` more bytes read; show the posts sent and lines refused so far."""
        now = time.monotonic()
        rate = sent / (now - self._started) if now > self._started else 0.0
        if self._progress is not None:
            self._progress.update(self._task, advance=size, sent=sent, rate=rate, refused=refused)
        elif now - self._last_plain >= _PLAIN_EVERY_S:
            self._last_plain = now
            print(f"{self._name}: {sent:,} sent ({rate:,.0f}/s), {refused:,} refused",
                  file=sys.stderr, flush=True)  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
