"""What one API key receives of one delivery candidate (shared by channels and live streams)."""

from __future__ import annotations

from typing import Any

from app.keys.keywords import matches_in
from models.events import Candidate
from models.keys import KeyRecord


def delivery_for(key: KeyRecord, candidate: Candidate) -> dict[str, Any] | None:
    """Return the event as ``key`` receives it, or None when its keywords do not match."""
    if not key.keywords:
        return candidate.event  # a key without keywords receives everything
    matches = matches_in(key.keywords, candidate.folded_texts())
    if not matches:
        return None
    return {**candidate.event, "keyword_matches": matches}
