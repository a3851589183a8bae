"""The post as users produce it to the ``posts`` topic, and the post event we deliver."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, model_validator

PostSource = Literal["x", "telegram", "discord"]

# Why: ids arrive as JSON numbers from some collectors; they are opaque strings to us.
_ID = Field(min_length=1, max_length=256)
# Why 2048: the de-facto URL limit of browsers and CDNs; an image URL past it is not a real one.
MAX_IMAGE_URL_CHARS = 2048


class RefusedImage(NamedTuple):
    """An entry of a post's ``images`` that is not an http(s) URL, shown as text, and why."""

    url: str
    reason: str


def image_url_problem(value: object) -> str | None:
    """Return why ``value`` is not an image URL we fetch, or None when it is one."""
    if not isinstance(value, str):
        return f"an image URL must be a string, not {type(value).__name__}"
    if len(value) > MAX_IMAGE_URL_CHARS:
        return f"image URL is {len(value):,} characters, over the {MAX_IMAGE_URL_CHARS:,} limit"
    try:
        parsed = AnyUrl(value)
    except ValueError:
        return f"not a valid URL: {value[:200]!r}"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return f"image URL must be http(s): {value[:200]!r}"
    return None


class Post(BaseModel):
    """A tracked social post; unknown fields are ignored.

    Each entry of ``images`` is checked on its own: one that is not an http(s) URL moves to
    ``refused_images`` (it gets its own ``ocr_error``) and the post and its other images go on.
    """

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)

    source: PostSource
    mid: str = _ID
    sid: str = _ID
    link: str = Field(default="", max_length=2048)
    text: str = ""
    images: list[str] = Field(default_factory=list)
    timestamp: datetime | None = None
    # Not delivered: the post event lists the images that were fetched.
    refused_images: tuple[RefusedImage, ...] = Field(default=(), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _split_images(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        # Why drop it: only this validator says which images were refused, never the producer.
        data = {name: value for name, value in data.items() if name != "refused_images"}
        images = data.get("images")
        if isinstance(images, list):
            good: list[str] = []
            refused: list[RefusedImage] = []
            for entry in images:
                problem = image_url_problem(entry)
                if problem is None:
                    good.append(entry)
                else:
                    shown = entry if isinstance(entry, str) else repr(entry)
                    refused.append(RefusedImage(shown[:MAX_IMAGE_URL_CHARS], problem))
            data["images"] = good
            data["refused_images"] = tuple(refused)
        return data

    def event(self) -> dict[str, object]:
        """Return the flat post event delivered to channels (``source`` is the discriminator)."""
        return self.model_dump(mode="json")
