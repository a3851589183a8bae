"""Live streams: `/ws`, `/stream` and the public stream."""

from __future__ import annotations

from pydantic import Field, SecretStr

from app.settings.base import SettingsBase


class LiveSettings(SettingsBase):
    """Buffers, pings, tokens and connection bounds of the live streams."""

    stream_buffer_events: int = Field(
        default=1000,
        ge=1,
        description=(
            "Events waiting per live-stream connection; past it the newest are dropped and the "
            "client gets a `stream_dropped` message with their number."
        ),
    )
    stream_ping_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds between keep-alive pings on `/ws` and `/stream`; a connection that takes no "
            "data for twice this is closed."
        ),
    )
    stream_resume_events: int = Field(
        default=5,
        ge=0,
        description=(
            "Events kept per key for a reconnecting SSE client: with `Last-Event-ID` it gets "
            "those it missed (the last this many) before the live stream."
        ),
    )
    sse_keepalive_s: float = Field(
        default=15.0, gt=0, description="Seconds between keep-alive comments on `/stream`."
    )
    stream_token_ttl_s: float = Field(
        default=86400.0,
        gt=0,
        description="Seconds a token from `POST /stream/token` opens `/stream?token=` (24 h).",
    )
    stream_token_secret: SecretStr | None = Field(
        default=None,
        description=(
            "A server secret stream tokens are also signed with (with each key's stored "
            "hash); set the same on every worker. Unset: the key's hash alone."
        ),
    )
    public_stream: bool = Field(
        default=False,
        description=(
            "Serve `GET /stream` without credentials: every delivery of the firehose, text cut "
            "to 100 characters (off: a self-hosted system shows nothing by default)."
        ),
    )
    public_stream_max: int = Field(
        default=100, ge=1, description="Public stream connections per worker (429 past it)."
    )
    stream_max_per_key: int = Field(
        default=5,
        ge=1,
        description="Live streams one API key may hold open per worker (429 past it).",
    )
