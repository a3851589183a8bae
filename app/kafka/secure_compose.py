"""The files of docker-compose.yml's `secure` profile: a secured broker in a container.

``ocrstream kafka-files DIR --host kafka-secure`` (the profile's one-shot setup service) writes
into a volume what the Kafka container and the worker read from it: the CA, certificates and
passwords (app/kafka/secure_local.py), the broker's server.properties, the script that formats
its storage with the SCRAM users and starts it, and the script that grants the worker its
ACLs with Kafka's own ``kafka-acls.sh``.
"""

from __future__ import annotations

import shlex
import uuid
from pathlib import Path

from app.kafka.acls import worker_acls
from app.kafka.secure_local import (
    WORKER_USER,
    broker_properties,
    scram_format_arguments,
    secure_material,
    write_private,
)
from app.settings import Settings

# The ports of the broker inside the compose network.
SASL_SSL_PORT = 9093
TLS_PORT = 9094
CONTROLLER_PORT = 9095
KAFKA_BIN = "/opt/kafka/bin"  # in the apache/kafka image
DATA_DIR = "/var/lib/kafka/data"


def write_container_files(directory: Path, host: str, settings: Settings) -> list[Path]:
    """Write the secured broker's files into ``directory``; return them (kept when present)."""
    material = secure_material(directory / "tls", hosts=(host,))
    bootstrap = f"{host}:{SASL_SSL_PORT}"
    properties = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{CONTROLLER_PORT}",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": DATA_DIR,
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        **broker_properties(
            material, SASL_SSL_PORT, CONTROLLER_PORT, TLS_PORT, host=host, bind="0.0.0.0"
        ),
    }
    server = directory / "server.properties"
    write_private(server, "".join(f"{k}={v}\n" for k, v in properties.items()))
    cluster_id = uuid.uuid4().hex[:22]
    scram = " ".join(shlex.quote(argument) for argument in scram_format_arguments(material))
    start = directory / "start-kafka.sh"
    write_private(
        start,
        "#!/bin/sh\n# Format once, with the SCRAM users; then run the broker.\nset -e\n"
        f"if [ ! -f {DATA_DIR}/meta.properties ]; then\n"
        f"  {KAFKA_BIN}/kafka-storage.sh format -t {cluster_id} -c {server} {scram}\n"
        f"fi\nexec {KAFKA_BIN}/kafka-server-start.sh {server}\n",
    )
    admin = material.admin_properties(bootstrap)
    grants = [
        f"{KAFKA_BIN}/kafka-acls.sh --bootstrap-server {bootstrap} --command-config {admin} "
        + " ".join(shlex.quote(a) for a in rule.command_arguments(f"User:{WORKER_USER}"))
        for rule in worker_acls(settings)
    ]
    acls = directory / "grant-acls.sh"
    head = "#!/bin/sh\n# The worker's ACLs (docs/operations.md).\nset -e\n"
    write_private(acls, head + "\n".join(grants) + "\n")
    return [server, start, acls, admin, material.ca]
