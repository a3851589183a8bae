"""How every Kafka client of the project connects: TLS, SASL, or neither, from the settings.

One place for it, so the Faust app, the outbox, the keys replica, the webhook and live-stream
consumers, the admin clients and the command line all connect the same way. The settings use
the names of librdkafka's and the Java client's properties (docs/operations.md).
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.settings import Settings


class KafkaSecurityError(ValueError):
    """A security setting cannot be used (a file missing or unreadable); says which."""


def connection(settings: Settings) -> dict[str, Any]:
    """Return the keyword arguments an aiokafka client connects with (servers and security)."""
    return {"bootstrap_servers": settings.broker, **client_security(settings)}


def client_security(settings: Settings) -> dict[str, Any]:
    """Return aiokafka's security arguments: protocol, TLS context and SASL credentials."""
    protocol = settings.kafka_security_protocol
    arguments: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        arguments["ssl_context"] = tls_context(settings)
    if protocol.startswith("SASL_"):
        arguments["sasl_mechanism"] = settings.kafka_sasl_mechanism
        arguments["sasl_plain_username"] = settings.kafka_sasl_username
        arguments["sasl_plain_password"] = sasl_password(settings)
    return arguments


def faust_credentials(settings: Settings) -> Any:
    """Return the Faust app's ``broker_credentials`` (None for PLAINTEXT)."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(tls_context(settings))
    credentials = faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=sasl_password(settings),
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=tls_context(settings) if protocol == "SASL_SSL" else None,
    )
    return credentials


def sasl_password(settings: Settings) -> str:
    """Return the SASL password, from its setting or its file."""
    if settings.kafka_sasl_password is not None:
        return settings.kafka_sasl_password.get_secret_value()
    return _read(settings.kafka_sasl_password_file, "OCRSTREAM_KAFKA_SASL_PASSWORD_FILE").strip()


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Return the TLS context of the settings (one per distinct set of files)."""
    key_password = settings.kafka_ssl_key_password
    return _tls_context(
        settings.kafka_ssl_ca_location,
        settings.kafka_ssl_certificate_location,
        settings.kafka_ssl_key_location,
        key_password.get_secret_value() if key_password is not None else "",
        settings.kafka_ssl_endpoint_identification_algorithm == "https",
    )


@lru_cache(maxsize=4)
def _tls_context(
    ca: str, certificate: str, key: str, key_password: str, check_hostname: bool
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca:
        _read(ca, "OCRSTREAM_KAFKA_SSL_CA_LOCATION")
        try:
            context.load_verify_locations(cafile=ca)
        except ssl.SSLError as exc:
            raise KafkaSecurityError(
                f"OCRSTREAM_KAFKA_SSL_CA_LOCATION {ca[:200]} holds no PEM certificate: {exc.reason}"
            ) from None
    if certificate:
        _read(certificate, "OCRSTREAM_KAFKA_SSL_CERTIFICATE_LOCATION")
        _read(key, "OCRSTREAM_KAFKA_SSL_KEY_LOCATION")
        try:
            context.load_cert_chain(certificate, key, key_password or None)
        except ssl.SSLError as exc:
            raise KafkaSecurityError(
                "OCRSTREAM_KAFKA_SSL_CERTIFICATE_LOCATION and OCRSTREAM_KAFKA_SSL_KEY_LOCATION "
                f"are not a PEM certificate and its key (or OCRSTREAM_KAFKA_SSL_KEY_PASSWORD "
                f"is wrong): {exc.reason}"
            ) from None
    context.check_hostname = check_hostname
    return context


def _read(path: str, setting: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise KafkaSecurityError(
            f"{setting} {path[:200]} cannot be read: {exc.strerror or exc}"
        ) from None
