"""What a secured local broker needs: a throwaway CA, certificates, SCRAM users, its properties.

``ocrstream kafka --secure`` and the tests run Kafka the way a managed service does: clients
connect with SASL_SSL (SCRAM-SHA-256/512 or PLAIN) or with a client certificate (mutual TLS),
and the StandardAuthorizer lets a principal do only what an ACL allows. Everything is made once
per data directory (readable by its owner only) and kept, so a restart uses the same users.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

# The principal that administers the broker (a super user) and the one the worker runs as,
# which holds only the ACLs of app/kafka/acls.py. The client certificate names the worker too.
ADMIN_USER = "admin"
WORKER_USER = "ocrstream"
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class SecureMaterial:
    """The files and passwords of a secured local broker (in ``directory``)."""

    directory: Path
    passwords: dict[str, str]

    @property
    def ca(self) -> Path:
        """Return the CA certificate clients trust (PEM)."""
        return self.directory / "ca.pem"

    @property
    def server(self) -> Path:
        """Return the broker's key and certificate chain (PEM, as Kafka's PEM keystore takes)."""
        return self.directory / "server.pem"

    @property
    def client_certificate(self) -> Path:
        """Return the worker's client certificate (mutual TLS), CN=ocrstream."""
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        """Return the worker's client private key (PEM, unencrypted, mode 600)."""
        return self.directory / "client-key.pem"

    def password_file(self, user: str) -> Path:
        """Return the file that holds a user's password (for ``*_PASSWORD_FILE`` settings)."""
        return self.directory / f"{user}.password"

    def admin_properties(self, bootstrap: str) -> Path:
        """Write and return the admin's client.properties (for Kafka's tools' --command-config)."""
        path = self.directory / "admin.properties"
        lines = {
            "bootstrap.servers": bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.jaas.config": _jaas("scram", ADMIN_USER, self.passwords[ADMIN_USER]),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca),
        }
        write_private(path, "".join(f"{k}={v}\n" for k, v in lines.items()))
        return path

    def worker_environment(
        self, bootstrap: str, mechanism: str = "SCRAM-SHA-512"
    ) -> dict[str, str]:
        """Return the settings a worker connects with as the least-privileged user."""
        return {
            "OCRSTREAM_BROKER": bootstrap,
            "OCRSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "OCRSTREAM_KAFKA_SASL_MECHANISM": mechanism,
            "OCRSTREAM_KAFKA_SASL_USERNAME": WORKER_USER,
            "OCRSTREAM_KAFKA_SASL_PASSWORD_FILE": str(self.password_file(WORKER_USER)),
            "OCRSTREAM_KAFKA_SSL_CA_LOCATION": str(self.ca),
        }


def secure_material(directory: Path, hosts: tuple[str, ...] = ()) -> SecureMaterial:
    """Return the material in ``directory``, made the first time (CA, certificates, users).

    The broker's certificate names 127.0.0.1 and localhost, and ``hosts`` (a container's name).
    """
    passwords_file = directory / "passwords.json"
    if passwords_file.exists():
        return SecureMaterial(directory, json.loads(passwords_file.read_text()))
    directory.mkdir(parents=True, exist_ok=True)
    passwords = {user: secrets.token_urlsafe(24) for user in (ADMIN_USER, WORKER_USER)}
    material = SecureMaterial(directory, passwords)
    _make_certificates(material, hosts)
    for user, password in passwords.items():
        write_private(material.password_file(user), password + "\n")
    write_private(passwords_file, json.dumps(passwords))
    return material


def broker_properties(
    material: SecureMaterial,
    port: int,
    controller_port: int,
    tls_port: int,
    host: str = "127.0.0.1",
    bind: str = "127.0.0.1",
) -> dict[str, str]:
    """Return the server properties of a node that clients reach only with credentials.

    Clients use SASL_SSL on ``port``, or TLS with a client certificate on ``tls_port`` (mutual
    TLS; the certificate's CN is the principal). The controller listener (loopback) takes SASL
    PLAIN from the admin alone: KRaft controllers cannot use SCRAM, whose users live in the
    metadata they serve. Nothing is open to an anonymous principal.
    """
    admin_password = material.passwords[ADMIN_USER]
    plain_users = " ".join(f'user_{u}="{p}"' for u, p in material.passwords.items())
    scram = _jaas("scram", ADMIN_USER, admin_password)
    admin_plain = _jaas("plain", ADMIN_USER, admin_password)[:-1]
    return {
        "listeners": f"SASL_SSL://{bind}:{port},SSL://{bind}:{tls_port},"
        f"CONTROLLER://{bind}:{controller_port}",
        "advertised.listeners": f"SASL_SSL://{host}:{port},SSL://{host}:{tls_port}",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": ",".join((*SCRAM_MECHANISMS, "PLAIN")),
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": f"{admin_plain} {plain_users};",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": (
            f'{admin_plain} user_{ADMIN_USER}="{admin_password}";'
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(material.server),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(material.ca),
        # The TLS listener takes only clients with a certificate of the CA; its CN is the
        # principal (CN=ocrstream -> User:ocrstream).
        "listener.name.ssl.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)$/$1/,DEFAULT",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN_USER}",
        "allow.everyone.if.no.acl.found": "false",
    }


def scram_format_arguments(material: SecureMaterial) -> list[str]:
    """Return ``kafka-storage format`` arguments that create the SCRAM users."""
    arguments: list[str] = []
    for user, password in material.passwords.items():
        for mechanism in SCRAM_MECHANISMS:
            arguments += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
    return arguments


def _jaas(kind: str, user: str, password: str) -> str:
    module = {
        "scram": "org.apache.kafka.common.security.scram.ScramLoginModule",
        "plain": "org.apache.kafka.common.security.plain.PlainLoginModule",
    }[kind]
    return f'{module} required username="{user}" password="{password}";'


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, from its creation on."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)


def _make_certificates(material: SecureMaterial, hosts: tuple[str, ...]) -> None:
    """Make a CA, the broker's certificate (127.0.0.1, localhost) and the worker's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,  # what Kafka's PEM keystore reads
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("ocrstream local CA"))
        .issuer_name(name("ocrstream local CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .sign(ca_key, hashes.SHA256())
    )

    def issued(
        common_name: str, usages: list[x509.ObjectIdentifier], for_server: bool
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=825))
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if for_server:
            names: list[x509.GeneralName] = [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                *(x509.DNSName(host) for host in hosts),
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return pem_key(key), cert.public_bytes(serialization.Encoding.PEM)

    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    material.ca.write_bytes(ca_pem)
    # Why client auth too: a broker is also the client of the others (and of itself).
    server_usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    server_key, server_cert = issued("127.0.0.1", server_usages, for_server=True)
    write_private(material.server, (server_key + server_cert + ca_pem).decode())
    client_key, client_cert = issued(
        WORKER_USER, [ExtendedKeyUsageOID.CLIENT_AUTH], for_server=False
    )
    material.client_certificate.write_bytes(client_cert)
    write_private(material.client_key, client_key.decode())
