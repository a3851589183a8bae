"""Every Kafka client connects as the settings say; the worker's ACLs are the documented ones."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import faust
import pytest
from pydantic import SecretStr, ValidationError

from app.cli.docs import with_acl_commands
from app.kafka.acls import worker_acls
from app.kafka.secure_local import secure_material
from app.kafka.security import (
    KafkaSecurityError,
    client_security,
    connection,
    faust_credentials,
)
from app.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> object:
    return secure_material(tmp_path_factory.mktemp("tls"))


def test_plaintext_is_the_default_and_changes_nothing() -> None:
    settings = Settings(broker="b:9092")
    assert connection(settings) == {"bootstrap_servers": "b:9092", "security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None


def test_sasl_ssl_gives_every_client_the_mechanism_the_user_and_a_verifying_context(
    material: object, tmp_path: Path
) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("from-a-file\n")
    settings = Settings(
        broker="b:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ocrstream",
        kafka_sasl_password_file=str(password_file),
        kafka_ssl_ca_location=str(material.ca),  # type: ignore[attr-defined]
    )
    arguments = client_security(settings)
    assert arguments["sasl_mechanism"] == "SCRAM-SHA-512"
    assert arguments["sasl_plain_username"] == "ocrstream"
    assert arguments["sasl_plain_password"] == "from-a-file"
    context = arguments["ssl_context"]
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (
        credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-512"
    )
    assert "from-a-file" not in repr(credentials) and "from-a-file" not in repr(settings)


def test_mutual_tls_loads_the_client_certificate(material: object) -> None:
    settings = Settings(
        broker="b:9094",
        kafka_security_protocol="SSL",
        kafka_ssl_ca_location=str(material.ca),  # type: ignore[attr-defined]
        kafka_ssl_certificate_location=str(material.client_certificate),  # type: ignore[attr-defined]
        kafka_ssl_key_location=str(material.client_key),  # type: ignore[attr-defined]
        kafka_ssl_endpoint_identification_algorithm="none",
    )
    arguments = client_security(settings)
    assert arguments["security_protocol"] == "SSL" and "sasl_mechanism" not in arguments
    assert not arguments["ssl_context"].check_hostname
    assert isinstance(faust_credentials(settings), faust.SSLCredentials)


def test_incomplete_or_unreadable_settings_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="OCRSTREAM_KAFKA_SASL_MECHANISM"):
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="u")
    with pytest.raises(ValidationError, match="go together"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_certificate_location="c.pem")
    missing = Settings(kafka_security_protocol="SSL", kafka_ssl_ca_location=str(tmp_path / "no"))
    with pytest.raises(KafkaSecurityError, match="OCRSTREAM_KAFKA_SSL_CA_LOCATION .* cannot be"):
        client_security(missing)
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    garbage = Settings(kafka_security_protocol="SSL", kafka_ssl_ca_location=str(not_pem))
    with pytest.raises(KafkaSecurityError, match="holds no PEM certificate"):
        client_security(garbage)
    secret = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password=SecretStr("hunter2-password"),
    )
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret.model_dump())


def test_the_operations_guide_lists_exactly_the_worker_acls() -> None:
    guide = (REPO / "docs" / "operations.md").read_text()
    assert guide == with_acl_commands(guide), "run `make docs`"
    for acl in worker_acls(Settings()):
        assert " ".join(acl.command_arguments("User:ocrstream")) in guide
    # None on the cluster, and none for every topic or group.
    assert not re.search(r"--cluster|--topic '?\*|--group '?\*", guide)
