"""Before a worker starts: its operator key must open every secret the keys changelog holds."""

from __future__ import annotations

from app.keys.changelog import read_keys
from app.sealing import SecretKeyError, box_for
from app.settings import Settings


async def check_secret_key(settings: Settings) -> None:
    """Raise SecretKeyError, saying which keys and why, when a stored secret does not open.

    Why at start: a worker with the wrong key would run, then dead-letter every signed webhook
    delivery; an operator who rotates keys learns of a missing old key here, at once.
    """
    box = box_for(settings)
    records = await read_keys(settings)
    failures: list[tuple[str, SecretKeyError]] = []
    for record in records.values():
        if record.webhook_secret:
            try:
                box.open(record.webhook_secret, record.key_id)
            except SecretKeyError as exc:
                failures.append((record.key_id, exc))
    if failures:
        key_id, first = failures[0]
        raise SecretKeyError(
            f"OCRSTREAM_SECRET_KEY does not open the webhook signing secrets of "
            f"{len(failures)} key(s) in {settings.keys_changelog_topic}; key {key_id}: {first}"
        )
