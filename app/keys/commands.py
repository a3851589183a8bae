"""How control commands change a key record. Pure: the control agent applies it to the table."""

from __future__ import annotations

import asyncio
import hmac

from yarl import URL

from app.fetch import FetchError, check_resolves, check_url, limits_from
from app.keys.keywords import merge_keywords, remove_keywords
from app.settings import Settings
from models.keys import (
    MAX_WEBHOOKS_PER_KEY,
    AddKeywords,
    AddWebhook,
    ConfirmTelegram,
    ControlCommand,
    CreateKey,
    KeyRecord,
    MarkTelegram,
    RemoveKeywords,
    RemoveWebhook,
    RevokeKey,
    SetChannels,
    SetTelegram,
    SetWebhooks,
    TelegramSubscription,
    topic_name_problem,
)


class ControlError(ValueError):
    """A command cannot be applied (unknown key, revoked key, limits)."""


def apply_command(current: KeyRecord | None, command: ControlCommand) -> KeyRecord:
    """Return the key record after ``command``; raise ControlError if it cannot apply."""
    if isinstance(command, CreateKey):
        if current is not None:
            raise ControlError(f"key {command.key_id} already exists")
        return KeyRecord(
            key_id=command.key_id,
            key_hash=command.key_hash,
            label=command.label,
            created_at=command.created_at,
            channels=command.channels,
        )
    if current is None:
        raise ControlError(f"unknown key {command.key_id}")
    if isinstance(command, RevokeKey):
        return current.model_copy(update={"revoked": True})
    if current.revoked:
        raise ControlError(f"key {command.key_id} is revoked")
    if isinstance(command, AddKeywords):
        keywords = merge_keywords(current.keywords, command.keywords)
        return current.model_copy(update={"keywords": tuple(keywords)})
    if isinstance(command, RemoveKeywords):
        keywords = [] if command.all else remove_keywords(current.keywords, command.keywords)
        return current.model_copy(update={"keywords": tuple(keywords)})
    if isinstance(command, SetChannels):
        return current.model_copy(update={"channels": command.channels})
    if isinstance(command, SetWebhooks):
        secret = command.secret or current.webhook_secret
        if command.urls and not secret:
            raise ControlError(f"key {command.key_id} has no webhook secret yet; send one")
        formats = current.webhook_formats if command.formats is None else command.formats
        kept = {url: fmt for url, fmt in formats.items() if url in command.urls and fmt != "json"}
        return current.model_copy(
            update={"webhooks": command.urls, "webhook_secret": secret, "webhook_formats": kept}
        )
    if isinstance(command, AddWebhook):
        return _add_webhook(current, command)
    if isinstance(command, RemoveWebhook):
        urls = tuple(url for url in current.webhooks if url != command.url)
        formats = {url: fmt for url, fmt in current.webhook_formats.items() if url != command.url}
        return current.model_copy(update={"webhooks": urls, "webhook_formats": formats})
    if isinstance(command, SetTelegram):
        return current.model_copy(update={"telegram": command.subscription})
    if isinstance(command, MarkTelegram):
        subscription = current.telegram
        if subscription is None or subscription.id != command.subscription_id:
            return current  # replaced or removed meanwhile: the mark is of a past subscription
        marked = subscription.model_copy(
            update={"status": command.status, "status_reason": command.reason}
        )
        return current.model_copy(update={"telegram": marked})
    if isinstance(command, ConfirmTelegram):
        confirmed = confirm_telegram(current.telegram, command)
        return current.model_copy(update={"telegram": confirmed})
    raise ControlError(f"unsupported command {command!r}")


def confirm_telegram(
    subscription: TelegramSubscription | None, command: ConfirmTelegram
) -> TelegramSubscription:
    """Return the subscription active, or raise ControlError saying why the chat's code fails.

    One use only: the code's hash is dropped once it has confirmed the subscription.
    """
    if subscription is None or subscription.id != command.subscription_id:
        raise ControlError("no such Telegram subscription (replaced or removed)")
    if subscription.status != "PENDING" or not subscription.code_sha256:
        raise ControlError("the Telegram subscription is not waiting for a code")
    if subscription.chat_id.lower() != command.chat_id.lower():
        raise ControlError("the code was sent from another chat than the one subscribed")
    if not hmac.compare_digest(subscription.code_sha256, command.code_sha256):
        raise ControlError("wrong code")
    if subscription.code_expires_at is None or command.at > subscription.code_expires_at:
        raise ControlError("the code has expired: subscribe again")
    return subscription.model_copy(
        update={
            "status": "ACTIVE",
            "status_reason": "",
            "confirmed_at": command.at,
            "code_sha256": "",
            "code_expires_at": None,
        }
    )


def _add_webhook(current: KeyRecord, command: AddWebhook) -> KeyRecord:
    urls = current.webhooks
    if command.url not in urls:
        if len(urls) >= MAX_WEBHOOKS_PER_KEY:
            raise ControlError(f"a key has at most {MAX_WEBHOOKS_PER_KEY} webhooks")
        urls = (*urls, command.url)
    secret = current.webhook_secret or command.secret
    if not secret:
        raise ControlError(f"key {command.key_id} has no webhook secret yet; send one")
    formats = {url: fmt for url, fmt in current.webhook_formats.items() if url != command.url}
    if command.format != "json":
        formats[command.url] = command.format
    return current.model_copy(
        update={"webhooks": urls, "webhook_secret": secret, "webhook_formats": formats}
    )


def check_channels(settings: Settings, channels: tuple[str, ...]) -> None:
    """Refuse channel topics Kafka would refuse, or that are the pipeline's own (a loop)."""
    for name in channels:
        problem = topic_name_problem(name)
        if problem is not None:
            raise ControlError(f"invalid channel: {problem}")
    clash = sorted(set(channels) & set(settings.pipeline_topics()))
    if clash:
        raise ControlError(f"channels cannot be the pipeline's own topics: {', '.join(clash)}")


def check_webhooks(settings: Settings, urls: tuple[str, ...]) -> None:
    """Refuse webhook URLs we would never deliver to (scheme, literal non-public address)."""
    limits = limits_from(settings)
    for url in urls:
        try:
            check_url(URL(url), limits)
        except (FetchError, ValueError) as exc:
            raise ControlError(f"webhook {url[:100]!r} refused: {exc}") from None


async def check_webhook_hosts(settings: Settings, urls: tuple[str, ...]) -> None:
    """Refuse webhook URLs whose host resolves to a non-public address (ControlError).

    Done where a webhook is registered (KeyAdmin); the control agent keeps the literal check
    alone, as a name may resolve otherwise later, and each delivery checks again anyway.
    """
    limits = limits_from(settings)

    async def check(url: str) -> None:
        try:
            await check_resolves(URL(url), limits)
        except (FetchError, ValueError) as exc:
            raise ControlError(f"webhook {url[:100]!r} refused: {exc}") from None

    # Why at once: ten names that each stall the resolver would hold the request ten times 5 s.
    results = await asyncio.gather(*(check(url) for url in urls), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def check_targets(settings: Settings, command: ControlCommand) -> None:
    """Refuse channels or webhooks a command sets that this deployment would not deliver to.

    Only commands that set them are checked: a revoke or a keyword change must still work on a
    key whose targets a later, stricter setting would refuse.
    """
    if isinstance(command, CreateKey | SetChannels):
        check_channels(settings, command.channels)
    if isinstance(command, SetWebhooks):
        check_webhooks(settings, command.urls)
    if isinstance(command, AddWebhook):
        check_webhooks(settings, (command.url,))


def needs_new_secret(current: KeyRecord, urls: list[str], rotate: bool) -> bool:
    """Tell whether setting ``urls`` mints a signing secret: asked for, or the key has none."""
    # Why mint on the first URL: a key that never had webhooks has nothing to sign with.
    return rotate or (bool(urls) and not current.webhook_secret)
