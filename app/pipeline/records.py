"""Decoding records read from Kafka: a value becomes a model or a reason to refuse it. Pure."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

Model = TypeVar("Model", bound=BaseModel)
Decoded = TypeVar("Decoded")

# Why: the reason travels in a dead letter and in the status page; five errors say enough.
_ERRORS_SHOWN = 5


class RecordRefused(ValueError):
    """A record cannot be processed; the message says why (it goes to the dead-letter topic)."""


def check_present(raw: bytes | None, what: str) -> bytes:
    """Return ``raw``; refuse a null value (a tombstone) or an empty one."""
    if raw is None:
        raise RecordRefused(f"null value (a tombstone?), not {what}")
    if not raw.strip():
        raise RecordRefused(f"empty value, not {what}")
    return raw


def decode_record(raw: bytes | None, model: type[Model], what: str) -> Model:
    """Return the record as ``model``; raise RecordRefused saying why it is not ``what``."""
    try:
        return model.model_validate_json(check_present(raw, what))
    except ValidationError as exc:
        raise RecordRefused(f"invalid {what}: {summarize(exc)}") from None


def decode_with(raw: bytes | None, adapter: TypeAdapter[Decoded], what: str) -> Decoded:
    """Return the record decoded by ``adapter``; raise RecordRefused saying why it is not."""
    try:
        return adapter.validate_json(check_present(raw, what))
    except ValidationError as exc:
        raise RecordRefused(f"invalid {what}: {summarize(exc)}") from None


def summarize(exc: ValidationError) -> str:
    """Return the first few validation errors as ``field: message; ...``."""
    parts = []
    for error in exc.errors(include_url=False)[:_ERRORS_SHOWN]:
        where = ".".join(str(part) for part in error["loc"]) or "record"
        parts.append(f"{where}: {_message(error)}")
    return "; ".join(parts)


def _message(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")
