"""Before a worker starts: do its credentials work, and do its ACLs cover what it uses?

Each failure is one sentence that names the setting or the ACL, instead of a client retrying
in a loop (a wrong password) or Faust failing later with a traceback (a missing ACL).
"""

from __future__ import annotations

import ssl

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from app.kafka.acls import worker_acls
from app.kafka.security import client_security, connection
from app.settings import Settings

TOPIC_AUTHORIZATION_FAILED = 29
OPERATIONS_DOC = 'docs/operations.md, "Production Kafka"'


class AccessError(RuntimeError):
    """The worker cannot use the broker as configured; the message says what to change."""


async def check_access(settings: Settings) -> None:
    """Raise AccessError when the credentials fail or a topic or group ACL is missing."""
    await check_credentials(settings)
    await _check_topics(settings)
    admin = AIOKafkaAdminClient(**connection(settings))
    await admin.start()
    try:
        await _check_group(admin, settings)
    finally:
        await admin.close()


async def check_credentials(settings: Settings) -> None:
    """Connect to the first bootstrap server once: TLS and SASL fail here, with a sentence."""
    first = settings.broker.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    try:
        conn = await create_conn(host, int(port), **client_security(settings))
    except (SaslAuthenticationFailed, UnsupportedSaslMechanismError) as exc:
        raise AccessError(
            f"Kafka at {first} refused the credentials of OCRSTREAM_KAFKA_SASL_USERNAME="
            f"{settings.kafka_sasl_username} with OCRSTREAM_KAFKA_SASL_MECHANISM="
            f"{settings.kafka_sasl_mechanism}: check OCRSTREAM_KAFKA_SASL_PASSWORD (or _FILE) "
            f"and the mechanism ({_first_line(exc)})"
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise AccessError(
            f"the TLS certificate of Kafka at {first} is not trusted ({exc.verify_message}): "
            "set OCRSTREAM_KAFKA_SSL_CA_LOCATION to the CA that signed it"
            + (
                ", or connect by a name the certificate holds"
                if "mismatch" in str(exc.verify_message).lower()
                else ""
            )
        ) from None
    except ssl.SSLError as exc:
        raise AccessError(
            f"TLS with Kafka at {first} failed ({exc.reason}): check "
            "OCRSTREAM_KAFKA_SECURITY_PROTOCOL and, for mutual TLS, "
            "OCRSTREAM_KAFKA_SSL_CERTIFICATE_LOCATION and OCRSTREAM_KAFKA_SSL_KEY_LOCATION"
        ) from None
    except (OSError, KafkaError):
        return  # not reachable now: the clients retry and say so, as without security
    conn.close()


async def _check_topics(settings: Settings) -> None:
    errors = await topic_errors(settings, list(settings.pipeline_topics()))
    refused = sorted(name for name, code in errors.items() if code == TOPIC_AUTHORIZATION_FAILED)
    if refused:
        raise AccessError(
            f"the Kafka principal of this worker may not use the topic(s) {', '.join(refused)}: "
            f"grant it {_topic_rule(settings, refused[0])} ({OPERATIONS_DOC} lists every ACL)"
        )


async def topic_errors(settings: Settings, names: list[str]) -> dict[str, int]:
    """Return each topic's metadata error code (0, unknown, not authorized), creating none.

    Why not the admin client's describe_topics: its metadata request lets the broker create a
    missing topic with the broker's defaults (one partition, no compaction) before
    ensure_topics could create it as the pipeline needs it.
    """
    client = AIOKafkaClient(**connection(settings))
    await client.bootstrap()
    try:
        request = MetadataRequest(names, allow_auto_topic_creation=False)
        response = await client.send(client.get_random_node(), request)
    finally:
        await client.close()
    return {topic["topic"]: topic["error_code"] for topic in response.to_object()["topics"]}


async def _check_group(admin: AIOKafkaAdminClient, settings: Settings) -> None:
    try:
        await admin.list_consumer_group_offsets(settings.app_id)
    except GroupAuthorizationFailedError:
        rule = next(acl for acl in worker_acls(settings) if acl.resource == "group")
        raise AccessError(
            f"the Kafka principal of this worker may not join the consumer group "
            f"{settings.app_id}: grant it {', '.join(rule.operations)} on groups "
            f"{rule.pattern} {rule.name!r} ({OPERATIONS_DOC})"
        ) from None
    except KafkaError:
        return  # a coordinator still starting (a fresh broker): authorized, and Faust waits


def _topic_rule(settings: Settings, topic: str) -> str:
    for acl in worker_acls(settings):
        named = topic == acl.name if acl.pattern == "literal" else topic.startswith(acl.name)
        if acl.resource == "topic" and named:
            return f"{', '.join(acl.operations)} on topic {acl.pattern} {acl.name!r}"
    return "Read, Write, Create, Describe and DescribeConfigs on it"


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
