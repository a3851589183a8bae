"""docker-compose.yml cannot run here (no Docker engine); check it agrees with the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.kafka.acls import worker_acls
from app.kafka.local import KAFKA_VERSION
from app.kafka.secure_compose import write_container_files
from app.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


def test_kafka_is_the_pinned_apache_image_with_a_healthcheck() -> None:
    kafka = _compose()["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert "kafka-broker-api-versions" in " ".join(kafka["healthcheck"]["test"])


def test_worker_waits_for_a_healthy_kafka_and_its_settings_are_real() -> None:
    services = _compose()["services"]
    worker = services["worker"]
    assert worker["build"] == "."
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    env: dict[str, str] = worker["environment"]
    known = {f"OCRSTREAM_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= known, set(env) - known
    settings = Settings.model_validate(
        {k.removeprefix("OCRSTREAM_").lower(): v for k, v in env.items()}
    )
    # The broker address is the kafka service's internal listener.
    host, port = settings.broker.split(":")
    assert host == "kafka"
    assert (
        f"PLAINTEXT://kafka:{port}"
        in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    # The web port the worker binds, on all interfaces, is published from a host port range
    # wide enough for every replica (two by default, scalable to four).
    host_ports, container_port = worker["ports"][0].split(":")
    first, last = (int(port) for port in host_ports.split("-"))
    assert int(container_port) == settings.web_port == first
    assert last - first + 1 >= 4 > worker["deploy"]["replicas"] == 2
    assert settings.web_host == "0.0.0.0"
    # The operator pages are published on the host's loopback only.
    host_ip, host_ports, container_port = worker["ports"][1].split(":")
    assert host_ip == "127.0.0.1" and int(container_port) == settings.operator_port
    assert int(host_ports.split("-")[0]) == settings.operator_port
    # Two workers can share the work only if the topics have partitions for both.
    assert settings.topic_partitions >= worker["deploy"]["replicas"]


def test_the_dockerfile_runs_the_worker_command() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    # The console script the wheel installs (pyproject.toml [project.scripts]).
    assert 'CMD ["ocrstream", "worker"]' in dockerfile
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'ocrstream = "app.cli:main"' in pyproject
    for package in ("app", "agents", "models"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_the_local_broker_pom_pins_the_same_kafka_version() -> None:
    pom = (REPO / "kafka" / "pom.xml").read_text()
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom


def test_the_cluster_profile_has_three_replicating_brokers_and_workers_that_use_them() -> None:
    services = _compose()["services"]
    nodes = [services[f"kafka{i}"] for i in (1, 2, 3)]
    assert all(node["profiles"] == ["cluster"] for node in nodes)
    assert all(node["image"] == f"apache/kafka:{KAFKA_VERSION}" for node in nodes)
    envs = [node["environment"] for node in nodes]
    assert [env["KAFKA_NODE_ID"] for env in envs] == ["1", "2", "3"]
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs}
    assert voters == {"1@kafka1:9093,2@kafka2:9093,3@kafka3:9093"}
    assert [env["KAFKA_ADVERTISED_LISTENERS"] for env in envs] == [
        f"PLAINTEXT://kafka{i}:9092" for i in (1, 2, 3)
    ]
    for env in envs:
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert len({e["CLUSTER_ID"] for e in envs}) == 1
    worker = services["cluster-worker"]
    assert worker["profiles"] == ["cluster"]
    assert set(worker["depends_on"]) == {"kafka1", "kafka2", "kafka3"}
    env = worker["environment"]
    known = {f"OCRSTREAM_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= known, set(env) - known
    settings = Settings.model_validate(
        {k.removeprefix("OCRSTREAM_").lower(): v for k, v in env.items()}
    )
    assert settings.broker.split(",") == ["kafka1:9092", "kafka2:9092", "kafka3:9092"]
    assert (settings.topic_replicas, settings.min_insync_replicas) == (3, 2)
    # The single-node services carry no profile: `docker compose up` starts them alone.
    assert "profiles" not in services["kafka"] and "profiles" not in services["worker"]


def test_every_worker_gets_the_operator_key_from_a_secret_file() -> None:
    compose = _compose()
    secret = compose["secrets"]["ocrstream_secret_key"]
    assert secret["file"] == "./secret-key"
    assert "secret-key" in (REPO / ".gitignore").read_text().split()
    for name in ("worker", "cluster-worker", "secure-worker"):
        worker = compose["services"][name]
        assert worker["secrets"] == ["ocrstream_secret_key"]
        path = worker["environment"]["OCRSTREAM_SECRET_KEY_FILE"]
        assert path == "/run/secrets/ocrstream_secret_key"


def test_the_secure_profile_runs_the_files_the_code_writes(tmp_path: Path) -> None:
    services = _compose()["services"]
    names = ("secure-setup", "kafka-secure", "secure-acls", "secure-worker")
    assert all(services[name]["profiles"] == ["secure"] for name in names)
    setup, kafka, acls, worker = (services[name] for name in names)
    host = setup["command"][setup["command"].index("--host") + 1]
    mount = setup["command"][2]
    assert setup["command"][:2] == ["ocrstream", "kafka-files"] and host == "kafka-secure"
    assert kafka["depends_on"]["secure-setup"]["condition"] == "service_completed_successfully"
    assert acls["depends_on"]["kafka-secure"]["condition"] == "service_healthy"
    assert worker["depends_on"]["secure-acls"]["condition"] == "service_completed_successfully"
    assert all(f"secure-kafka:{mount}" in services[n]["volumes"][0] for n in names)
    # What the containers run is what the code writes (here into a directory of the test's).
    written = write_container_files(tmp_path, host, Settings())
    assert {p.name for p in written} >= {"server.properties", "start-kafka.sh", "grant-acls.sh"}
    assert kafka["command"] == ["/bin/sh", f"{mount}/start-kafka.sh"]
    assert acls["command"] == ["/bin/sh", f"{mount}/grant-acls.sh"]
    assert (tmp_path / "start-kafka.sh").read_text().count("--add-scram") == 4
    grants = (tmp_path / "grant-acls.sh").read_text()
    assert grants.count("kafka-acls.sh --bootstrap-server kafka-secure:9093") == len(
        worker_acls(Settings())
    )
    server = (tmp_path / "server.properties").read_text()
    assert f"advertised.listeners=SASL_SSL://{host}:9093" in server
    assert "allow.everyone.if.no.acl.found=false" in server
    # The worker connects as the least-privileged user with the files of the volume.
    env = worker["environment"]
    settings = Settings.model_validate(
        {k.removeprefix("OCRSTREAM_").lower(): v for k, v in env.items()}
    )
    assert settings.broker == f"{host}:9093" and settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_password_file == f"{mount}/tls/ocrstream.password"
    assert settings.kafka_ssl_ca_location == f"{mount}/tls/ca.pem"
    assert "kafka-broker-api-versions.sh --bootstrap-server kafka-secure:9093" in " ".join(
        kafka["healthcheck"]["test"]
    )
