"""Fixes for bugs in faust-streaming and aiokafka, each fenced to the exact code it replaces.

Each module here fixes one bug (one, faust_drain_inline, removes a measured cost instead): its
docstring says what went wrong, how it was seen, the fix, and the upstream issue; its regression
test is named there too. A patch records the SHA-256 of the source of each method it replaces.
``apply_all()`` checks every fence before it changes anything and refuses (``PatchFenceError``)
when the installed library's method is not the one the patch was written for, so an upgrade can
never run unpatched or half-patched; the worker then does not start, and
``tests/unit/test_patches.py`` fails in CI. Only the worker's composition root (``app/worker.py``)
applies them; tests use the ``patched`` fixture, which undoes them afterwards.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# One module per bug, in the order they are applied.
MODULES = (
    "app.patches.aiokafka_known_topics",
    "app.patches.aiokafka_seek_to_committed",
    "app.patches.faust_seek_before_resume",
    "app.patches.faust_fetch_copy",
    "app.patches.faust_commit_in_flight",
    "app.patches.faust_commit_before_revoke",
    "app.patches.faust_drain_inline",
    "app.patches.faust_bounded_wait_empty",
)


class PatchFenceError(RuntimeError):
    """A method to replace is not the code its patch was written for (the library changed)."""


@dataclass(frozen=True)
class Patch:
    """One replaced method: where it lives, what replaces it, and the fence on the original."""

    owner: type
    name: str
    replacement: Callable[..., Any]
    # SHA-256 of ``inspect.getsource`` of the method as released (see the pinned version).
    upstream_sha256: str

    @property
    def where(self) -> str:
        """Return ``module.Class.method`` for messages."""
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}"


def source_sha256(function: Callable[..., Any]) -> str:
    """Return the SHA-256 of a function's source text."""
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def all_patches() -> list[Patch]:
    """Return every patch of every module, in order."""
    patches: list[Patch] = []
    for name in MODULES:
        patches.extend(importlib.import_module(name).PATCHES)
    return patches


_originals: dict[tuple[type, str], Any] = {}


def check_fences(patches: list[Patch] | None = None) -> None:
    """Raise PatchFenceError naming each method whose source is not the one patched for."""
    stale = []
    for patch in patches if patches is not None else all_patches():
        current = _originals.get((patch.owner, patch.name), patch.owner.__dict__.get(patch.name))
        if current is None:
            stale.append(f"{patch.where} is gone")
        elif source_sha256(current) != patch.upstream_sha256:
            stale.append(f"{patch.where} changed (sha256 {source_sha256(current)[:12]})")
    if stale:
        raise PatchFenceError(
            "library code the ocrstream patches replace is not the pinned release: "
            + "; ".join(stale)
            + ". Re-check each fix in app/patches/ against the new code before running."
        )


def apply_all() -> None:
    """Check every fence, then replace every method (once; applying again does nothing)."""
    patches = all_patches()
    check_fences(patches)
    for patch in patches:
        key = (patch.owner, patch.name)
        if key not in _originals:
            _originals[key] = patch.owner.__dict__[patch.name]
            setattr(patch.owner, patch.name, patch.replacement)


def undo_all() -> None:
    """Put every replaced method back (for tests)."""
    for (owner, name), original in _originals.items():
        setattr(owner, name, original)
    _originals.clear()


@contextmanager
def applied() -> Iterator[None]:
    """Apply every patch for the block, then undo them."""
    already = bool(_originals)
    apply_all()
    try:
        yield
    finally:
        if not already:
            undo_all()
