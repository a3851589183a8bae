"""Shared test helpers: where test images live."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import patches

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def manifest() -> dict[str, dict[str, object]]:
    """Ground truth of the images in tests/data (lines and addresses), by file name."""
    entries = json.loads((DATA / "manifest.json").read_text())
    return {entry["file"]: entry for entry in entries}


@pytest.fixture
def patched() -> Iterator[None]:
    """Apply the library patches of app/patches/ for one test, and undo them after it."""
    with patches.applied():
        yield
