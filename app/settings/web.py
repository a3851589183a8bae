"""The HTTP API and the operator pages: where they listen, who may call, how often."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator, model_validator

from app.settings.base import SettingsBase

# What a browser sends in Origin: a scheme, a host and maybe a port, nothing else.
_ORIGIN = re.compile(
    r"https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?", flags=re.ASCII | re.IGNORECASE
)


class WebSettings(SettingsBase):
    """The web server, CORS, the operator listener, the admin key and rate limits."""

    web_host: str = Field(
        default="127.0.0.1", description="Address the web server binds (`0.0.0.0` in containers)."
    )
    web_advertised_host: str = Field(
        default="",
        description=(
            "Host the other workers reach this one's web server by: a request for the address "
            "book that reaches a worker not holding it is passed to the holder there. Empty: "
            "`OCRSTREAM_WEB_HOST`, or this machine's hostname when that is `0.0.0.0` or `::` "
            "(a container's hostname, which the other containers of its network resolve)."
        ),
    )
    web_port: int = Field(
        default=6066, ge=1, le=65535, description="Web server port (the API and live streams)."
    )
    cors_origins: str = Field(
        default="",
        description=(
            "Origins whose web pages may call the key holder's API from a browser (CORS), "
            "comma-separated, e.g. `https://app.example.com,http://localhost:3000`; `*` for "
            "any. Empty: none (a request with another origin's `Origin` is refused). The admin "
            "routes and operator pages are never open to other origins."
        ),
    )
    operator_host: str = Field(
        default="127.0.0.1",
        description=(
            "Address the operator pages (`/dashboard`, `/status/`, `/metrics`, Faust's own "
            "pages) are served on: every key's deliveries and OCR text are there, so loopback "
            "by default (`0.0.0.0` in a container, published on the host's loopback only)."
        ),
    )
    operator_port: int = Field(
        default=7066,
        ge=0,
        le=65535,
        description=(
            "Port of the operator pages; 0: none (on the web port they need the admin key, "
            "`x-admin-key` or `Authorization: Bearer`, as from any other address)."
        ),
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description=(
            "Secret for the `x-admin-key` header of `/admin` routes; unset turns the admin API off."
        ),
    )
    rate_limit_per_minute: float = Field(
        default=600.0, gt=0, description="Sustained requests per minute per API key (per worker)."
    )
    rate_limit_burst: int = Field(
        default=60, ge=1, description="Requests an API key may make at once before it is limited."
    )
    keyword_apply_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "How long a keyword or key change waits to be applied before the API answers 503."
        ),
    )

    @property
    def cors_origin_set(self) -> frozenset[str]:
        """Return the allowed origins, lowercased (``*`` stands for any)."""
        return frozenset(o.strip().lower() for o in self.cors_origins.split(",") if o.strip())

    @field_validator("cors_origins")
    @classmethod
    def _origins_only(cls, value: str) -> str:
        for origin in (o.strip() for o in value.split(",")):
            if origin and origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"OCRSTREAM_CORS_ORIGINS: {origin[:100]!r} is not an origin (scheme://host "
                    "or scheme://host:port, no path, no trailing slash)"
                )
        return value

    @model_validator(mode="after")
    def _operator_pages_apart(self) -> WebSettings:
        # Why: on the API's port the operator pages would be open to everyone who reaches it.
        if self.operator_port and self.operator_port == self.web_port:
            raise ValueError(
                "OCRSTREAM_OPERATOR_PORT must differ from OCRSTREAM_WEB_PORT (0: no operator "
                "listener)"
            )
        return self
