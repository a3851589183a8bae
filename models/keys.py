"""API keys as kept in the keys table, and the commands on the control topic that change them."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

# Why: key ids appear in topic names, so they are restricted to topic-safe characters.
KEY_ID_PATTERN = r"^[a-z0-9]{8,32}$"
KeyId = Annotated[str, Field(pattern=KEY_ID_PATTERN)]
# Kafka's own rule for topic names (org.apache.kafka.common.internals.Topic.validate).
TOPIC_NAME_CHARS = r"^[A-Za-z0-9._-]{1,249}$"
MAX_TOPIC_NAME_CHARS = 249


def topic_name_problem(name: str) -> str | None:
    """Return why ``name`` cannot be a channel topic, or None when it can.

    Kafka's rules (legal characters, at most 249, not "." or "..") plus ours: names starting
    with "__" are Kafka's internal topics (``__consumer_offsets``), never a delivery target.
    """
    if not name:
        return "a topic name must not be empty"
    if len(name) > MAX_TOPIC_NAME_CHARS:
        return f"a topic name has at most {MAX_TOPIC_NAME_CHARS} characters, not {len(name)}"
    if name in (".", ".."):
        return f"{name!r} is not a valid Kafka topic name"
    if re.fullmatch(TOPIC_NAME_CHARS, name) is None:
        return f"{name[:60]!r} has characters Kafka does not allow (only A-Z a-z 0-9 . _ -)"
    if name.startswith("__"):
        return f"{name[:60]!r} is reserved for Kafka's internal topics (names starting with __)"
    return None


def _valid_topic_name(name: str) -> str:
    problem = topic_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


TopicName = Annotated[str, Field(pattern=TOPIC_NAME_CHARS), AfterValidator(_valid_topic_name)]
WebhookUrl = Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2000)]
# Why a cap: each webhook costs a delivery per matching event; ten covers real set-ups.
MAX_WEBHOOKS_PER_KEY = 10
# The body a webhook gets: ocrstream's signed JSON event, or what Discord's or Slack's
# incoming webhooks accept (those services verify no signature, so those bodies are not signed).
WebhookFormat = Literal["json", "discord", "slack"]
# A Telegram chat id: a user (positive), a group (negative) or "@channelname".
TelegramChatId = Annotated[str, Field(pattern=r"^(-?[0-9]{1,20}|@[A-Za-z0-9_]{5,32})$")]
# PENDING: made, waiting for the chat to confirm it with its one-time code; ACTIVE: confirmed,
# delivered to; INACTIVE: the bot can no longer write there.
TelegramStatus = Literal["PENDING", "ACTIVE", "INACTIVE"]
# Why: a subscription kept by a version that did not ask the chat to confirm; it is not sent
# to until its key holder subscribes again and the chat confirms.
UNCONFIRMED_REASON = "made before chats had to confirm a subscription: subscribe again"


class TelegramSubscription(BaseModel):
    """The Telegram chat a key's deliveries are sent to by the operator's bot.

    A chat receives nothing until it has proved it wants to: ``/start <code>`` sent in that
    chat (by an administrator, in a group) with the one-time code the key holder was given.
    Only the code's SHA-256 is kept, until it is used or expires.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    chat_id: TelegramChatId
    name: str = Field(default="", max_length=100)
    status: TelegramStatus = "PENDING"
    # Why kept: an operator (and the key holder) can see why a subscription went inactive.
    status_reason: str = ""
    created_at: float
    code_sha256: str = ""
    code_expires_at: float | None = None
    confirmed_at: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _confirmed_or_pending(cls, data: Any) -> Any:
        # Why here: every reader of the keys (filter, webhooks, the API) sees it the same.
        if isinstance(data, dict) and data.get("status", "PENDING") == "ACTIVE":
            if data.get("confirmed_at") is None:
                return {**data, "status": "PENDING", "status_reason": UNCONFIRMED_REASON}
        return data


class KeyRecord(BaseModel):
    """One API key: its hash (never the key), keywords, channel topics and webhooks."""

    model_config = ConfigDict(frozen=True)

    key_id: KeyId
    key_hash: str
    label: str = ""
    created_at: float
    revoked: bool = False
    keywords: tuple[str, ...] = ()
    # Why plain str: a record written by an older version may hold a name now refused; it must
    # still load (the key keeps working), and the filter refuses that one channel.
    channels: tuple[str, ...] = ()
    webhooks: tuple[str, ...] = ()
    # The format of each webhook URL that is not "json" (absent: json; older records have none).
    webhook_formats: dict[str, WebhookFormat] = Field(default_factory=dict)
    telegram: TelegramSubscription | None = None
    # Sealed with the operator's key (app/sealing.py); records written before sealing
    # existed hold it in clear until their next change. Every worker opens it to sign
    # deliveries (HMAC); it is shown to the admin only when minted, never listed, never logged.
    webhook_secret: str = ""


class CreateKey(BaseModel):
    """Register a new key (the CLI or API made the secret; only its hash travels)."""

    op: Literal["create_key"] = "create_key"
    key_id: KeyId
    key_hash: str = Field(min_length=64, max_length=64)
    label: str = Field(default="", max_length=200)
    created_at: float
    channels: tuple[TopicName, ...] = Field(min_length=1)


class RevokeKey(BaseModel):
    """Stop a key from receiving or calling anything."""

    op: Literal["revoke_key"] = "revoke_key"
    key_id: KeyId


class AddKeywords(BaseModel):
    """Add keywords to a key (normalised and checked against the limits when applied)."""

    op: Literal["add_keywords"] = "add_keywords"
    key_id: KeyId
    keywords: tuple[str, ...]


class RemoveKeywords(BaseModel):
    """Remove some keywords of a key, or all of them when ``keywords`` is empty."""

    op: Literal["remove_keywords"] = "remove_keywords"
    key_id: KeyId
    keywords: tuple[str, ...] = ()
    all: bool = False


class SetChannels(BaseModel):
    """Replace the channel topics a key's deliveries are sunk to."""

    op: Literal["set_channels"] = "set_channels"
    key_id: KeyId
    channels: tuple[TopicName, ...] = Field(min_length=1)


class SetWebhooks(BaseModel):
    """Replace the webhook URLs of a key; ``secret`` set: sign with this new secret.

    ``formats`` names the format of URLs that are not "json"; None keeps the formats the URLs
    that stay already have (what the admin route, which sets URLs only, sends).
    """

    op: Literal["set_webhooks"] = "set_webhooks"
    key_id: KeyId
    urls: tuple[WebhookUrl, ...] = Field(max_length=MAX_WEBHOOKS_PER_KEY)
    secret: str | None = Field(default=None, min_length=32, max_length=512)  # sealed
    formats: dict[str, WebhookFormat] | None = None

    @field_validator("urls")
    @classmethod
    def _unique(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(urls))  # de-duplicated, in the order given


class AddWebhook(BaseModel):
    """Add one webhook URL to a key (or change its format), as its holder asks on /webhooks.

    ``secret`` is used only when the key has none yet (its first webhook).
    """

    op: Literal["add_webhook"] = "add_webhook"
    key_id: KeyId
    url: WebhookUrl
    format: WebhookFormat = "json"
    secret: str | None = Field(default=None, min_length=32, max_length=512)  # sealed


class RemoveWebhook(BaseModel):
    """Remove one webhook URL from a key (nothing happens when it has no such URL)."""

    op: Literal["remove_webhook"] = "remove_webhook"
    key_id: KeyId
    url: WebhookUrl


class SetTelegram(BaseModel):
    """Subscribe a key's deliveries to a Telegram chat (replacing any), or unsubscribe (None)."""

    op: Literal["set_telegram"] = "set_telegram"
    key_id: KeyId
    subscription: TelegramSubscription | None


class MarkTelegram(BaseModel):
    """Set the status of a key's Telegram subscription (the bot was removed from the chat)."""

    op: Literal["mark_telegram"] = "mark_telegram"
    key_id: KeyId
    subscription_id: str
    status: Literal["INACTIVE"]
    reason: str = Field(default="", max_length=300)


class ConfirmTelegram(BaseModel):
    """The chat sent ``/start <code>``: activate the key's pending subscription to it.

    Applied only when the subscription is the one named, still pending, for this chat, and its
    code's SHA-256 is ``code_sha256`` and had not expired at ``at``.
    """

    op: Literal["confirm_telegram"] = "confirm_telegram"
    key_id: KeyId
    subscription_id: str
    chat_id: TelegramChatId
    code_sha256: str = Field(min_length=64, max_length=64)
    at: float


ControlCommand = Annotated[
    CreateKey
    | RevokeKey
    | AddKeywords
    | RemoveKeywords
    | SetChannels
    | SetWebhooks
    | AddWebhook
    | RemoveWebhook
    | SetTelegram
    | MarkTelegram
    | ConfirmTelegram,
    Field(discriminator="op"),
]
control_command_adapter: TypeAdapter[ControlCommand] = TypeAdapter(ControlCommand)
