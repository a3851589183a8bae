"""The post as users produce it to the ``posts`` topic, and the post event we deliver."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, field_validator

PostSource = Literal["x", "telegram", "discord"]

# Why: ids arrive as JSON numbers from some collectors; they are opaque strings to us.
_ID = Field(min_length=1, max_length=256)


class Post(BaseModel):
    """A tracked social post; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)

    source: PostSource
    mid: str = _ID
    sid: str = _ID
    link: str = Field(default="", max_length=2048)
    text: str = ""
    images: list[str] = Field(default_factory=list)
    timestamp: datetime | None = None

    @field_validator("images")
    @classmethod
    def _images_are_http_urls(cls, images: list[str]) -> list[str]:
        for url in images:
            parsed = AnyUrl(url)
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise ValueError(f"image URL must be http(s): {url[:200]!r}")
        return images

    def event(self) -> dict[str, object]:
        """Return the flat post event delivered to channels (``source`` is the discriminator)."""
        return self.model_dump(mode="json")
