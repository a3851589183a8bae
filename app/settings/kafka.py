"""How the worker reaches Kafka, and how it commits, creates topics and connects securely."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from app.settings.base import SettingsBase


class KafkaSettings(SettingsBase):
    """The brokers, the consumer group, topic creation, commits and client security."""

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
    stop_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Seconds a stopping worker waits for Kafka to take its consumer's last commit; past "
            "them it exits anyway (a broker that is gone never answers). Records not committed "
            "are read again by the next worker."
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
    local_kafka_dir: str = Field(
        default="",
        description="Where the local broker keeps its jars and data.",
    )

    @property
    def broker_url(self) -> str:
        """Return the broker list in Faust's ``kafka://`` URL form."""
        hosts = [h.strip() for h in self.broker.split(",") if h.strip()]
        return ";".join(f"kafka://{h}" for h in hosts)

    @property
    def heartbeat_interval_s(self) -> float:
        """Return how often consumers heartbeat: a third of the session timeout, at most 3 s."""
        return min(3.0, self.session_timeout_s / 3)

    @field_validator("processing_guarantee", mode="before")
    @classmethod
    def _no_exactly_once(cls, value: object) -> object:
        if value == "exactly_once":
            raise ValueError(
                "exactly_once was removed: Faust's transactions repeated outputs across crashes "
                "(docs/pipeline.md); every event carries its idempotency key instead"
            )
        return value

    @model_validator(mode="after")
    def _kafka_credentials_complete(self) -> KafkaSettings:
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
