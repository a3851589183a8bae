"""All settings of ocrstream, read from the environment (prefix ``OCRSTREAM_``)."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:  # imported where used: numpy and Pillow cost a command line ~150 ms
    from app.ocr.engine import EngineConfig
    from app.ocr.images import ImageLimits

# Why 10 MB: the product's documented cap for `imageUrl` downloads and `image` bodies.
MAX_IMAGE_BYTES_DEFAULT = 10 * 1024 * 1024
# Why 40 MP: a 10 MB PNG can decode to gigabytes (decompression bombs); real post images are
# far below this (a 4K screenshot is 8.3 MP).
MAX_IMAGE_PIXELS_DEFAULT = 40_000_000
# Why 16384: the largest side WebP allows and most image hosts keep; a scrolled phone
# screenshot (1179 x 15000) still fits.
MAX_IMAGE_SIDE_DEFAULT = 16384
# What a browser sends in Origin: a scheme, a host and maybe a port, nothing else.
_ORIGIN = re.compile(
    r"https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?", flags=re.ASCII | re.IGNORECASE
)


class Settings(BaseSettings):
    """Every knob of the service; docs/settings.md lists each one (generated from here)."""

    model_config = SettingsConfigDict(env_prefix="OCRSTREAM_", frozen=True, extra="ignore")

    # Kafka
    broker: str = Field(
        default="",
        description=(
            "Kafka bootstrap servers (`host:port,...`). Empty: `ocrstream run` starts a local "
            "single-node broker itself (port 9092 if free)."
        ),
    )
    app_id: str = Field(
        default="ocrstream",
        description="Faust app id: the consumer group and the prefix of table changelog topics.",
    )
    topic_partitions: int = Field(
        default=4,
        ge=1,
        description=(
            "Partitions of the topics the worker creates (bounds how many workers share the work)."
        ),
    )
    session_timeout_s: float = Field(
        default=30.0,
        ge=6,
        description=(
            "Seconds without a heartbeat before Kafka gives a dead worker's partitions to the "
            "others (bounds takeover after a crash)."
        ),
    )
    commit_interval_s: float = Field(
        default=0.5,
        gt=0,
        description=(
            "Seconds between commits of what the agents finished. A crashed worker's successor "
            "does again what was finished since the last commit (at-least-once repeats, each "
            "with its idempotency key); a clean stop or a rebalance commits first."
        ),
    )
    topic_replicas: int = Field(
        default=1,
        ge=1,
        description=(
            "Replication factor of the topics the worker creates (3 on a cluster of three or "
            "more brokers); the worker refuses to start when the cluster has fewer brokers."
        ),
    )
    min_insync_replicas: int = Field(
        default=0,
        ge=0,
        description=(
            "`min.insync.replicas` of the topics the worker creates: with `acks=all`, a write "
            "is acknowledged once this many replicas have it (2 with 3 replicas survives one "
            "broker lost); 0 leaves the broker's default."
        ),
    )
    processing_guarantee: Literal["at_least_once"] = Field(
        default="at_least_once",
        description=(
            "Only `at_least_once` (every event with its idempotency key): `exactly_once` was "
            "removed, since Faust's transactions repeated outputs across crashes; why, in "
            "docs/pipeline.md."
        ),
    )
    # Why 5 ms: with no linger every record became its own produce request, and writing those
    # took a quarter of the worker's CPU (py-spy, bench/soak.py); see docs/benchmarks.md. The
    # agents' batches do not wait for it: each is one closed record batch (app/kafka/outbox.py).
    producer_linger_ms: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Milliseconds Faust's producer waits to batch records into one produce request (the "
            "keys table's changelog, control commands). The agents' batches are sent at once."
        ),
    )

    # Topic names
    posts_topic: str = Field(default="posts", description="Input: posts produced by users.")
    images_topic: str = Field(default="images", description="One OCR job per image.")
    ocr_result_topic: str = Field(default="ocr_result", description="One OCR event per image.")
    ocr_error_topic: str = Field(
        default="ocr_error",
        description="One error event per image that could not be read (fetch, decode, OCR).",
    )
    candidates_topic: str = Field(
        default="ocrstream-candidates",
        description="Internal: posts and ocr_result events waiting for the keyword filter.",
    )
    control_topic: str = Field(default="ocrstream-control", description="Key and keyword commands.")
    dead_letter_topic: str = Field(
        default="ocrstream-dead-letter",
        description="Records that could not be processed, with the reason.",
    )
    webhooks_topic: str = Field(
        default="ocrstream-webhooks",
        description="Internal: one job per delivery and webhook URL, keyed by endpoint.",
    )
    channel_topic_prefix: str = Field(
        default="ocrstream-channel-",
        description="A key's default channel topic is this prefix + its public key id.",
    )

    stop_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Seconds a stopping worker waits for Kafka to take its consumer's last commit; past "
            "them it exits anyway (a broker that is gone never answers). Records not committed "
            "are read again by the next worker."
        ),
    )

    # Batches
    batch_max_records: int = Field(
        default=500,
        ge=1,
        description=(
            "Records an agent takes at once from a topic (posts, candidates); their outputs are "
            "produced together, and the batch is acknowledged once the broker has them."
        ),
    )
    batch_wait_ms: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Milliseconds an agent waits to fill a batch before it handles what it has (the "
            "latency a quiet stream pays per hop)."
        ),
    )

    # Channels
    channel_retry_attempts: int = Field(
        default=10,
        ge=1,
        description=(
            "Attempts for a channel delivery held back while the cluster moved a leader (sent "
            "by the webhook lanes with their backoff, about 3 minutes in all) before it is "
            "dead-lettered."
        ),
    )
    channel_send_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Seconds one send to a channel topic may take; past it (or on an error) the delivery "
            "is dead-lettered and the channel skipped for a while."
        ),
    )
    channel_retry_after_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds a channel whose send failed is skipped (its deliveries dead-lettered at once)"
            " before it is tried again."
        ),
    )

    kafka_retry_s: float = Field(
        default=30.0,
        ge=0,
        description=(
            "Seconds a transient Kafka error (one Kafka calls retriable: a leader moving, a "
            "request timing out) met while handling a record is retried, backing off, before "
            "that step fails. The pipeline's own records and dead letters are retried until "
            "the broker has them, whatever this says."
        ),
    )

    # Kafka security: the names of librdkafka's and the Java client's properties
    # (`security.protocol` is OCRSTREAM_KAFKA_SECURITY_PROTOCOL, and so on).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description=(
            "How every Kafka client of the project connects (`security.protocol`): `SASL_SSL` "
            "for managed Kafka (Confluent Cloud, MSK, Aiven...), `SSL` for TLS (with a client "
            "certificate: mutual TLS)."
        ),
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None,
        description="`sasl.mechanism`; required with SASL_SSL and SASL_PLAINTEXT.",
    )
    kafka_sasl_username: str = Field(default="", description="`sasl.username`.")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="`sasl.password` (never logged or shown)."
    )
    kafka_sasl_password_file: str = Field(
        default="", description="A file holding `sasl.password` instead (a mounted secret)."
    )
    kafka_ssl_ca_location: str = Field(
        default="",
        description=(
            "`ssl.ca.location`: a PEM file of the CA certificates to trust. Empty: the system's."
        ),
    )
    kafka_ssl_certificate_location: str = Field(
        default="",
        description="`ssl.certificate.location`: the client's PEM certificate (mutual TLS).",
    )
    kafka_ssl_key_location: str = Field(
        default="", description="`ssl.key.location`: the client's PEM private key (mutual TLS)."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="`ssl.key.password`, when the private key is encrypted."
    )
    kafka_ssl_endpoint_identification_algorithm: Literal["https", "none"] = Field(
        default="https",
        description=(
            "`ssl.endpoint.identification.algorithm`: `https` checks that the broker's "
            "certificate names the host connected to; `none` turns that off (not advised)."
        ),
    )

    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "The operator's key that seals secrets before they reach Kafka (webhook signing "
            "secrets, in the control topic and the keys changelog): 32 bytes base64url, from "
            "`ocrstream secret-key`; the same on every worker and for the CLI. Rotating: "
            "`new,old` (the first seals, each opens). A worker refuses to start without it, "
            "or when it does not open what the keys changelog holds."
        ),
    )

    secret_key_file: str = Field(
        default="",
        description=(
            "A file holding `OCRSTREAM_SECRET_KEY` instead (a mounted secret); read when that "
            "is unset. `ocrstream run` on its own broker keeps one in the broker's directory."
        ),
    )

    # Web
    web_host: str = Field(
        default="127.0.0.1", description="Address the web server binds (`0.0.0.0` in containers)."
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

    # OCR
    # Why one process per core, each with every core's threads (OpenVINO): measured on 2 cores,
    # two processes of two threads read 8.8 images/s against 9.1 for two of one thread, while an
    # image that finds the worker idle takes 142 ms instead of 229 (docs/benchmarks.md).
    ocr_processes: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description=(
            "OCR worker processes (default: one per core); each OpenVINO process peaks at ~0.6 GB."
        ),
    )
    ocr_threads: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Inference threads per OCR process. Unset: every core with OpenVINO (it shares "
            "cores between processes well: an image alone gets them all), 1 with ONNX Runtime "
            "(which slows down when processes share cores)."
        ),
    )
    ocr_engine: Literal["openvino", "onnxruntime"] = Field(
        default="openvino",
        description=(
            "The runtime the OCR models run on: `openvino` (faster on x86 CPUs, bf16 where the "
            "CPU has it) or `onnxruntime` (the fallback)."
        ),
    )
    ocr_precision: Literal["auto", "bf16", "f32"] = Field(
        default="auto",
        description=(
            "OpenVINO's inference precision: `auto` is bf16 where the CPU computes it natively "
            "(AVX512_BF16 or AMX), else f32. The one in use is logged and on `/status/`."
        ),
    )
    # Why 32: twice the images one post may have, so a post whose images all sit on a slow host
    # holds at most half the slots; the rest keep reading other posts' images.
    ocr_concurrency: int = Field(
        default=32,
        ge=1,
        description=(
            "Images in flight per worker (downloading or waiting for OCR); twice the images one "
            "post may have, so one post never holds them all."
        ),
    )
    ocr_http_queue: int = Field(
        default=8,
        ge=1,
        description=(
            "`POST /ocr` requests waiting for an OCR process per worker; past it `/ocr` answers "
            "503 with `retry_after`."
        ),
    )
    ocr_http_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description=(
            "Share of OCR turns `POST /ocr` gets while pipeline images also wait (either gets all "
            "when the other is idle)."
        ),
    )
    ocr_det_max_side: int = Field(
        default=960, ge=320, description="Detector input: the longest side is scaled down to this."
    )

    qr_codes: bool = Field(
        default=True,
        description=(
            "Decode QR codes in every image: their addresses join `buy_ca`, their text is "
            "matched against keywords, and they are listed in `qr` (docs/records.md)."
        ),
    )
    ocr_cache_entries: int = Field(
        default=4096,
        ge=0,
        description=(
            "Recent OCR outputs kept, by image URL and by image bytes (SHA-256); 0 disables."
        ),
    )
    near_duplicates: bool = Field(
        default=True,
        description=(
            "Reuse the OCR output of an image already read for a re-encoded or resized copy of "
            "it (same picture, other bytes); checks and measurements in docs/ocr.md."
        ),
    )
    near_duplicate_entries: int = Field(
        default=1024,
        ge=0,
        description=(
            "Images remembered for the near-duplicate check (~26 KB each: a hash, grey and "
            "colour thumbnails, the reading's boxes), within the OCR cache's time window; 0 "
            "disables."
        ),
    )
    ocr_cache_ttl_s: float = Field(
        default=3600.0,
        ge=0,
        description=(
            "Seconds within which a repeated image (same URL, or same bytes under another URL) is "
            "not OCR'd again."
        ),
    )

    # Limits
    max_image_bytes: int = Field(
        default=MAX_IMAGE_BYTES_DEFAULT,
        ge=1,
        description="Largest image download (10 MB), enforced while streaming.",
    )
    max_image_pixels: int = Field(
        default=MAX_IMAGE_PIXELS_DEFAULT,
        ge=1,
        description="Largest image in pixels, checked from the header before decoding.",
    )
    max_image_side: int = Field(
        default=MAX_IMAGE_SIDE_DEFAULT,
        ge=1,
        description=(
            "Longest side of an image in pixels, checked from the header before decoding "
            "(`bad_dimensions` past it)."
        ),
    )
    max_images_per_post: int = Field(
        default=16,
        ge=1,
        description=(
            "Images of one post that are OCR'd; the rest are reported to the dead-letter topic."
        ),
    )
    max_post_text_chars: int = Field(
        default=100_000, ge=1, description="Posts with longer text go to the dead-letter topic."
    )
    fetch_connect_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="Seconds to connect to an image host (a read may stall twice as long).",
    )
    fetch_total_timeout_s: float = Field(
        default=20.0, gt=0, description="Seconds for a whole image download, redirects included."
    )
    # Why 8: a slow host's downloads then hold a quarter of the default 32 agent slots, while a
    # fast CDN (most images come from a few) still gets 8 at once, ample for what OCR reads.
    fetch_per_host: int = Field(
        default=8,
        ge=1,
        description=(
            "Image downloads in flight to one host per worker; a download that waits longer than "
            "`OCRSTREAM_FETCH_TOTAL_TIMEOUT_S` for a slot fails as `timeout`."
        ),
    )
    fetch_max_redirects: int = Field(
        default=5, ge=0, description="Redirects followed per image; every hop is checked again."
    )
    fetch_allow_private: bool = Field(
        default=False,
        description=(
            "Allow image hosts on loopback, private, link-local and metadata addresses (tests "
            "only)."
        ),
    )
    serve_samples: bool = Field(
        default=False,
        description=(
            "Serve the two bundled sample images at `/samples/NAME` and read a post's image URL "
            "that points there from the package, without a download (for a first try; "
            "`ocrstream run` turns it on)."
        ),
    )
    fetch_allowed_networks: str = Field(
        default="",
        description=(
            "Comma-separated CIDR networks fetched although not public, e.g. an internal image "
            "host `10.8.0.0/16`; every other private address stays refused."
        ),
    )

    # HTTP API
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

    # Webhooks
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

    # Telegram (one bot for the deployment; each key subscribes a chat at /tg_subscription)
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

    # Live streams (/ws and /stream)
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

    # Local broker (used when `broker` is empty)
    local_kafka_dir: str = Field(
        default="",
        description="Where the local broker keeps its jars and data.",
    )

    @property
    def broker_url(self) -> str:
        """Return the broker list in Faust's ``kafka://`` URL form."""
        hosts = [h.strip() for h in self.broker.split(",") if h.strip()]
        return ";".join(f"kafka://{h}" for h in hosts)

    @field_validator("processing_guarantee", mode="before")
    @classmethod
    def _no_exactly_once(cls, value: object) -> object:
        if value == "exactly_once":
            raise ValueError(
                "exactly_once was removed: Faust's transactions repeated outputs across crashes "
                "(docs/pipeline.md); every event carries its idempotency key instead"
            )
        return value

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

    @property
    def cors_origin_set(self) -> frozenset[str]:
        """Return the allowed origins, lowercased (``*`` stands for any)."""
        return frozenset(o.strip().lower() for o in self.cors_origins.split(",") if o.strip())

    @model_validator(mode="after")
    def _kafka_credentials_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_"):
            has_password = self.kafka_sasl_password is not None or self.kafka_sasl_password_file
            if not (self.kafka_sasl_mechanism and self.kafka_sasl_username and has_password):
                raise ValueError(
                    f"OCRSTREAM_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                    "OCRSTREAM_KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), "
                    "OCRSTREAM_KAFKA_SASL_USERNAME and OCRSTREAM_KAFKA_SASL_PASSWORD (or _FILE)"
                )
        if bool(self.kafka_ssl_certificate_location) != bool(self.kafka_ssl_key_location):
            raise ValueError(
                "OCRSTREAM_KAFKA_SSL_CERTIFICATE_LOCATION and OCRSTREAM_KAFKA_SSL_KEY_LOCATION "
                "go together (the client's certificate and its key)"
            )
        return self

    @model_validator(mode="after")
    def _operator_pages_apart(self) -> Settings:
        # Why: on the API's port the operator pages would be open to everyone who reaches it.
        if self.operator_port and self.operator_port == self.web_port:
            raise ValueError(
                "OCRSTREAM_OPERATOR_PORT must differ from OCRSTREAM_WEB_PORT (0: no operator "
                "listener)"
            )
        return self

    @property
    def heartbeat_interval_s(self) -> float:
        """Return how often consumers heartbeat: a third of the session timeout, at most 3 s."""
        return min(3.0, self.session_timeout_s / 3)

    def channel_topic(self, key_id: str) -> str:
        """Return the default channel topic name of a key."""
        return f"{self.channel_topic_prefix}{key_id}"

    @property
    def keys_changelog_topic(self) -> str:
        """Return the changelog topic Faust keeps for the keys table."""
        return f"{self.app_id}-keys-changelog"

    def pipeline_topics(self) -> dict[str, int]:
        """Return the pipeline's own topics (name -> partitions); none may be a channel."""
        return {
            self.posts_topic: self.topic_partitions,
            self.images_topic: self.topic_partitions,
            self.ocr_result_topic: self.topic_partitions,
            self.ocr_error_topic: self.topic_partitions,
            self.candidates_topic: self.topic_partitions,
            self.dead_letter_topic: self.topic_partitions,
            self.webhooks_topic: self.topic_partitions,
            # Why one partition: a single partition keeps control commands in order.
            self.control_topic: 1,
            self.keys_changelog_topic: 1,
        }


def settings_table() -> str:
    """Return the Markdown table of every setting: variable, default and meaning.

    docs/settings.md holds it between two markers; ``make docs`` writes it there and a test
    fails when the two differ, so the documentation is the code's own descriptions.
    """
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = "number of cores"
        elif field.default in (None, ""):
            default = "(unset)" if field.default is None else "(empty)"
        elif isinstance(field.default, bool):
            default = f"`{str(field.default).lower()}`"  # as it is written in the environment
        else:
            default = f"`{field.default}`"
        rows.append(f"| `OCRSTREAM_{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows) + "\n"


SETTINGS_TABLE_START = "<!-- settings table: generated by `make docs` from app/settings.py -->"
SETTINGS_TABLE_END = "<!-- end of settings table -->"


def with_settings_table(document: str) -> str:
    """Return ``document`` with the text between the settings-table markers regenerated."""
    head, rest = document.split(SETTINGS_TABLE_START, 1)
    _, tail = rest.split(SETTINGS_TABLE_END, 1)
    table = settings_table()
    return f"{head}{SETTINGS_TABLE_START}\n{table}{SETTINGS_TABLE_END}{tail}"


def engine_config(settings: Settings) -> EngineConfig:
    """Return how each OCR process builds its engine."""
    from app.ocr.engine import EngineConfig

    threads = settings.ocr_threads
    if threads is None:
        threads = (os.cpu_count() or 1) if settings.ocr_engine == "openvino" else 1
    return EngineConfig(
        det_max_side=settings.ocr_det_max_side,
        threads=threads,
        runtime=settings.ocr_engine,
        precision=settings.ocr_precision,
        qr=settings.qr_codes,
    )


def image_limits(settings: Settings) -> ImageLimits:
    """Return the bounds an image's header is checked against before decoding."""
    from app.ocr.images import ImageLimits

    return ImageLimits(max_pixels=settings.max_image_pixels, max_side=settings.max_image_side)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
