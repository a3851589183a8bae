"""Request bodies of the HTTP API, parsed (and bounded) by pydantic at the boundary.

Why models rather than ``json.loads`` and ``isinstance``: pydantic's JSON parser refuses what
Python's accepts and later breaks on (nesting thousands deep, numbers of thousands of digits,
lone surrogates that cannot be encoded), so a body either becomes a model or a 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    model_validator,
)

from models.events import Network, QrCode, Ref, TruncatedField, omitted_while_absent
from models.keys import MAX_WEBHOOKS_PER_KEY, TelegramChatId, TopicName, WebhookFormat

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


class AddWebhookRequest(BaseModel):
    """``POST /webhooks``: a URL to deliver to, and the body it gets (``json`` by default)."""

    url: Annotated[str, _must_be(str, "url must be an http(s) URL string")] = Field(max_length=2000)
    format: WebhookFormat = Field(
        default="json",
        description="json: the signed event; discord or slack: their incoming-webhook bodies",
    )


class RemoveWebhookRequest(BaseModel):
    """``DELETE /webhooks``: the URL to remove (or ``DELETE /webhooks/{id}``)."""

    url: Annotated[str, _must_be(str, "url must be an http(s) URL string")] = Field(max_length=2000)


def _chat_id_text(value: Any) -> Any:
    # Why: Telegram shows chat ids as numbers, and clients send them either way.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class TelegramSubscriptionRequest(BaseModel):
    """``POST /tg_subscription``: the chat the operator's bot sends the key's deliveries to."""

    chatId: Annotated[TelegramChatId, BeforeValidator(_chat_id_text)] = Field(  # noqa: N815
        description="a user or group id (groups are negative) or @channelname"
    )
    name: str = Field(default="", max_length=100)


# --- answers ----------------------------------------------------------------------------------


class ErrorAnswer(BaseModel):
    """Every error answer: ``{"status": "error", "error": "<why>"}`` and, where it applies, more."""

    status: Literal["error"] = "error"
    error: str
    retry_after: int | None = Field(default=None, description="seconds to wait (429, 503)")
    request_id: str | None = Field(
        default=None, description="500 only: the id the worker's log has the error under"
    )


class OcrLine(BaseModel):
    """One recognised line of text and the engine's confidence in it."""

    text: str
    score: float


class OcrData(BaseModel):
    """What ``POST /ocr`` found, and how long it took."""

    text: str = Field(description="the lines joined by \\n")
    lines: list[OcrLine]
    elapsed_ms: float = Field(description="OCR time (0 for an answer from the OCR cache)")
    total_ms: float = Field(description="the whole request, download included")
    qr: list[QrCode] | None = omitted_while_absent(
        "the QR codes in the image (ours, not the product's: only when there are)"
    )
    truncated: list[TruncatedField] | None = omitted_while_absent(
        "the fields cut to their bound (ours: only when something was cut; see records.md)"
    )


class OcrAnswer(BaseModel):
    """The answer of ``POST /ocr``, exactly as the product documents it."""

    data: OcrData
    message: Literal["Text extracted successfully"] = "Text extracted successfully"


class KeywordsData(BaseModel):
    """A key's keywords."""

    keywords: list[str]


class KeywordsAnswer(BaseModel):
    """The answer of every ``/keywords`` route."""

    data: KeywordsData
    message: str


class KeyView(BaseModel):
    """What an admin may see of a key: never its hash, its secret only once (when minted)."""

    key_id: str
    label: str
    created_at: float
    revoked: bool
    keywords: list[str]
    channels: list[str]
    webhooks: list[str]
    api_key: str | None = Field(default=None, description="only in the answer that created it")
    webhook_secret: str | None = Field(
        default=None, description="only when minted (the first webhook, or rotate_secret)"
    )


class KeyAnswer(BaseModel):
    """The answer of the routes that create or change one key."""

    data: KeyView
    message: str


class KeyListData(BaseModel):
    """Every key."""

    keys: list[KeyView]


class KeyListAnswer(BaseModel):
    """The answer of ``GET /admin/keys``."""

    data: KeyListData


class StreamToken(BaseModel):
    """A token that opens ``GET /stream?token=`` for one key, and when it expires."""

    token: str
    expires_at: str = Field(description="ISO 8601, UTC")


class StreamTokenAnswer(BaseModel):
    """The answer of ``POST /stream/token``."""

    data: StreamToken
    message: str


class WebhookView(BaseModel):
    """One of a key's webhooks; ``id`` is what ``DELETE /webhooks/{id}`` takes."""

    id: str
    url: str
    format: WebhookFormat


class WebhooksData(BaseModel):
    """A key's webhooks, and its signing secret when this answer minted it."""

    webhooks: list[WebhookView]
    webhook_secret: str | None = Field(
        default=None, description="only in the answer to the key's first webhook"
    )


class WebhooksAnswer(BaseModel):
    """The answer of every ``/webhooks`` route."""

    data: WebhooksData
    message: str


class TelegramSubscriptionView(BaseModel):
    """A key's Telegram subscription, as the product shows it (PENDING and its code are ours)."""

    id: str
    chatId: str  # noqa: N815
    name: str
    status: Literal["PENDING", "ACTIVE", "INACTIVE"] = Field(
        description="PENDING until the chat sends /start <code>; ACTIVE: delivered to"
    )
    statusReason: str | None = Field(  # noqa: N815
        default=None,
        description="why it is INACTIVE (the bot was removed), or PENDING again (made before "
        "chats had to confirm)",
    )
    expiresAt: float | None = Field(  # noqa: N815
        default=None, description="PENDING: when its code expires (Unix seconds)"
    )
    code: str | None = Field(
        default=None,
        description="the one-time code the chat sends as /start <code> (in the POST answer only)",
    )
    link: str | None = Field(
        default=None, description="a private chat: opening it sends /start <code> to the bot"
    )
    groupLink: str | None = Field(  # noqa: N815
        default=None, description="a group: an administrator opens it to add the bot with the code"
    )


class TelegramSubscriptionAnswer(BaseModel):
    """The answer of every ``/tg_subscription`` route (``data`` null: no subscription)."""

    data: TelegramSubscriptionView | None
    message: str


class WindowPosts(BaseModel):
    """Distinct posts that showed an address in one 5-minute window."""

    start: int = Field(description="the window's start, seconds since the epoch")
    posts: int


class FirstSeenData(BaseModel):
    """The first post (or image of a post) that showed an address."""

    at: float = Field(description="the post's time, seconds since the epoch")
    ref: Ref
    event_id: str
    image_url: str | None = omitted_while_absent("the image, when it was an image that showed it")


class AddressData(BaseModel):
    """What the address book knows of one address."""

    network: Network
    address: str
    first_seen: FirstSeenData
    windows: list[WindowPosts] = Field(description="the last 24 hours, oldest first")
    posts_24h: int


class AddressAnswer(BaseModel):
    """The answer of ``GET /addresses/{network}/{address}``."""

    data: AddressData


class TrendingAddress(BaseModel):
    """One address of ``GET /trending``, with its distinct posts in the window."""

    network: Network
    address: str
    posts: int
    first_seen_at: float | None


class TrendingData(BaseModel):
    """The addresses with the most distinct posts in a window, most first."""

    window: str
    addresses: list[TrendingAddress]


class TrendingAnswer(BaseModel):
    """The answer of ``GET /trending``."""

    data: TrendingData


REQUESTS: tuple[type[BaseModel], ...] = (
    OcrRequest,
    KeywordsRequest,
    RemoveKeywordsRequest,
    CreateKeyRequest,
    SetChannelsRequest,
    SetWebhooksRequest,
    AddWebhookRequest,
    RemoveWebhookRequest,
    TelegramSubscriptionRequest,
)
ANSWERS: tuple[type[BaseModel], ...] = (
    ErrorAnswer,
    OcrAnswer,
    KeywordsAnswer,
    KeyAnswer,
    KeyListAnswer,
    StreamTokenAnswer,
    WebhooksAnswer,
    TelegramSubscriptionAnswer,
    AddressAnswer,
    TrendingAnswer,
)
