"""Request bodies of the HTTP API, parsed (and bounded) by pydantic at the boundary.

Why models rather than ``json.loads`` and ``isinstance``: pydantic's JSON parser refuses what
Python's accepts and later breaks on (nesting thousands deep, numbers of thousands of digits,
lone surrogates that cannot be encoded), so a body either becomes a model or a 400.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

from models.keys import MAX_WEBHOOKS_PER_KEY, TopicName

# Why: the product caps keys at 100 keywords of 100 characters (after trimming); a raw keyword
# may carry surrounding blanks, so the raw bound is looser and the rule is checked when merged.
MAX_RAW_KEYWORD_CHARS = 1000
MAX_KEYWORDS_PER_REQUEST = 100
# Why: a key's channels are Kafka topics it writes every delivery to; a few cover real set-ups.
MAX_CHANNELS_PER_KEY = 20


def _must_be(json_type: type, message: str) -> BeforeValidator:
    """Refuse a value of another JSON type with ``message`` (pydantic would coerce some)."""

    def check(value: Any) -> Any:
        if value is not None and not isinstance(value, json_type):
            raise ValueError(message)
        return value

    return BeforeValidator(check)


class OcrRequest(BaseModel):
    """``POST /ocr``: exactly one of ``imageUrl`` (http(s)) or ``image`` (data URI or base64)."""

    model_config = ConfigDict(extra="ignore")

    imageUrl: Annotated[str | None, _must_be(str, "imageUrl must be an http(s) URL string")] = (
        Field(  # noqa: N815
            default=None, description="http(s) URL of the image, at most 10 MB"
        )
    )
    image: Annotated[str | None, _must_be(str, "image must be a string (data URI or base64)")] = (
        Field(default=None, description="data:image/...;base64, URI or raw base64, at most 10 MB")
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> OcrRequest:
        if (self.imageUrl is None) == (self.image is None):
            raise ValueError("give exactly one of imageUrl or image")
        return self


class KeywordsRequest(BaseModel):
    """``POST /keywords``: keywords to add (trimmed, lowercased and de-duplicated when added)."""

    keywords: Annotated[
        list[Annotated[str, Field(max_length=MAX_RAW_KEYWORD_CHARS)]],
        _must_be(list, "keywords must be a list of strings"),
    ] = Field(min_length=1, max_length=MAX_KEYWORDS_PER_REQUEST)


class RemoveKeywordsRequest(BaseModel):
    """``DELETE /keywords``: the keywords to remove, or ``{"all": true}``."""

    keywords: Annotated[
        list[Annotated[str, Field(max_length=MAX_RAW_KEYWORD_CHARS)]],
        _must_be(list, "keywords must be a list of strings"),
    ] = Field(default_factory=list, max_length=MAX_KEYWORDS_PER_REQUEST)
    all: StrictBool = False

    @model_validator(mode="after")
    def _something_to_remove(self) -> RemoveKeywordsRequest:
        if not self.all and not self.keywords:
            raise ValueError('name keywords to remove, or send {"all": true}')
        return self


class CreateKeyRequest(BaseModel):
    """``POST /admin/keys``: an optional label and channel topics (default: the key's own)."""

    label: str = Field(default="", max_length=200)
    channels: Annotated[
        list[TopicName] | None, _must_be(list, "channels must be a list of topic names")
    ] = Field(default=None, min_length=1, max_length=MAX_CHANNELS_PER_KEY)


class SetChannelsRequest(BaseModel):
    """``PUT /admin/keys/{key_id}/channels``: the key's channel topics (Kafka topic names)."""

    channels: Annotated[
        list[TopicName], _must_be(list, "channels must be a list of topic names")
    ] = Field(min_length=1, max_length=MAX_CHANNELS_PER_KEY)


class SetWebhooksRequest(BaseModel):
    """``PUT /admin/keys/{key_id}/webhooks``: the key's webhook URLs (``[]`` removes them)."""

    urls: Annotated[
        list[Annotated[str, Field(max_length=2000)]],
        _must_be(list, "urls must be a list of http(s) URLs"),
    ] = Field(max_length=MAX_WEBHOOKS_PER_KEY)
    rotate_secret: StrictBool = False
