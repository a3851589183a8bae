"""docker-compose.yml cannot run here (no Docker engine); check it agrees with the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.kafka.local import KAFKA_VERSION
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
