"""Deliveries beyond Kafka: webhooks and the Telegram bot."""

from __future__ import annotations

from pydantic import Field, SecretStr

from app.settings.base import SettingsBase


class DeliverySettings(SettingsBase):
    """Webhook retries, pace and fairness; the Telegram bot and its pace."""

    webhook_timeout_s: float = Field(
        default=10.0, gt=0, description="Seconds one webhook POST may take, connecting included."
    )
    webhook_max_attempts: int = Field(
        default=6,
        ge=1,
        description="Attempts per delivery before it goes to the dead-letter topic.",
    )
    webhook_backoff_base_s: float = Field(
        default=0.5, gt=0, description="Retry delay before jitter: base × 2^(attempt−1)."
    )
    webhook_backoff_max_s: float = Field(
        default=60.0, gt=0, description="Longest wait between two attempts."
    )
    webhook_concurrency: int = Field(
        default=32,
        ge=1,
        description=(
            "Webhook POSTs (and Telegram sends) in flight per worker, shared fairly: each API "
            "key holds at most an equal part among the keys sending now, so one key's "
            "endpoints that hang delay only that key."
        ),
    )
    webhook_max_pending: int = Field(
        default=1000,
        ge=1,
        description=(
            "Jobs queued per webhook endpoint; an endpoint that falls further behind gets its "
            "overflow dead-lettered at once (not attempted), so it holds neither memory nor the "
            "other endpoints."
        ),
    )
    webhook_rate_limited_waits: int = Field(
        default=20,
        ge=0,
        description=(
            "Times a delivery waits out a 429 that says how long (`Retry-After`, or Telegram's "
            "`retry_after`) without it counting as an attempt: a rate limit queues, not drops."
        ),
    )
    webhook_retry_after_max_s: float = Field(
        default=300.0, gt=0, description="Longest wait a 429's `Retry-After` is honoured for."
    )
    telegram_bot_token: SecretStr | None = Field(
        default=None,
        description=(
            "The bot's token from @BotFather; unset: /tg_subscription answers 503 and nothing "
            "is sent to Telegram. Never logged, never shown."
        ),
    )
    telegram_api_url: str = Field(
        default="https://api.telegram.org",
        pattern=r"^https?://[^\s]+$",
        description=(
            "The Bot API server (a local telegram-bot-api server works too); set by the "
            "operator, so not subject to the private-address refusal."
        ),
    )
    telegram_chat_interval_s: float = Field(
        default=1.0, gt=0, description="Seconds between two messages to one private chat."
    )
    telegram_group_interval_s: float = Field(
        default=3.0,
        gt=0,
        description="Seconds between two messages to one group or channel (20 a minute).",
    )
    telegram_max_per_s: float = Field(
        default=25.0, gt=0, description="Messages per second the bot sends, all chats together."
    )
    telegram_code_ttl_s: float = Field(
        default=3600.0,
        gt=0,
        description=(
            "Seconds the one-time code of a new Telegram subscription stays valid: the chat "
            "must send `/start <code>` within them, or the key holder subscribes again."
        ),
    )
    telegram_poll_s: float = Field(
        default=25.0,
        gt=0,
        le=50,
        description=(
            "Seconds one `getUpdates` long poll waits for the bot's messages (chats confirming "
            "subscriptions); only the Faust leader worker polls."
        ),
    )
