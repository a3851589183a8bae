"""Real worker processes on topics of their own, as tests and benchmarks run them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from app.kafka.local import LocalKafka, LocalKafkaCluster, free_port, terminate
from app.settings import Settings

REPO = Path(__file__).resolve().parents[1]


# The operator key of test workers (a fixed one: a test restarts workers on the same topics).
TEST_SECRET_KEY = "dGVzdHMtb25seS1vcGVyYXRvci1rZXktMzItYnl0ZXM"


def unique_settings(kafka: LocalKafka | LocalKafkaCluster, **overrides: Any) -> Settings:
    """Return settings with topic names and app id of their own, so tests do not mix."""
    tag = uuid.uuid4().hex[:8]
    web_port, operator_port = two_free_ports()
    values: dict[str, Any] = {
        "broker": kafka.bootstrap,
        "app_id": f"ocrstream-test-{tag}",
        "posts_topic": f"posts-{tag}",
        "images_topic": f"images-{tag}",
        "ocr_result_topic": f"ocr_result-{tag}",
        "ocr_error_topic": f"ocr_error-{tag}",
        "candidates_topic": f"candidates-{tag}",
        "control_topic": f"control-{tag}",
        "dead_letter_topic": f"dead-letter-{tag}",
        "webhooks_topic": f"webhooks-{tag}",
        "sightings_topic": f"sightings-{tag}",
        "channel_topic_prefix": f"channel-{tag}-",
        "topic_partitions": 2,
        "web_port": web_port,
        "operator_port": operator_port,
        "ocr_processes": 1,
        "ocr_concurrency": 2,
        "fetch_allow_private": True,  # the image host is on loopback
        "secret_key": TEST_SECRET_KEY,
    }
    values.update(overrides)
    return Settings(**values)


def two_free_ports() -> tuple[int, int]:
    """Return two different ports free on loopback now (a worker's web and operator ports)."""
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def on_other_ports(settings: Settings) -> Settings:
    """Return ``settings`` for another worker on this machine: web and operator ports of its own."""
    web_port, operator_port = two_free_ports()
    return settings.model_copy(update={"web_port": web_port, "operator_port": operator_port})


def operator_url(settings: Settings) -> str:
    """Return the base URL of a worker's operator pages (/dashboard, /status/, /metrics)."""
    return f"http://127.0.0.1:{settings.operator_port}"


def settings_env(settings: Settings) -> dict[str, str]:
    """Return the OCRSTREAM_* environment that reproduces ``settings`` in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCRSTREAM_")}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"OCRSTREAM_{name.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    return env


def run_cli(
    settings: Settings, *args: str, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m app ARGS`` with ``settings`` as its environment; return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=REPO,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@dataclass
class Worker:
    """A real ``python -m app worker`` process."""

    settings: Settings
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"worker-{uuid.uuid4().hex[:6]}.log"

    def start(self, timeout_s: float = 120.0) -> None:
        """Start the worker and wait for Faust's 'Ready'."""
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", "worker", "--loglevel", "info"],
                cwd=self.workdir,
                env=settings_env(self.settings) | {"PYTHONPATH": str(REPO)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()[-4000:]}")
            if "[^Worker]: Ready" in self.log():
                return
            time.sleep(0.25)
        raise RuntimeError(f"worker not ready in {timeout_s}s:\n{self.log()[-4000:]}")

    def log(self) -> str:
        """Return everything the worker printed so far."""
        return self.log_path.read_text(errors="replace")

    def dump_tasks(self, wait_s: float = 2.0) -> None:
        """Have a running worker log the stack of every asyncio task (mode's SIGUSR1 handler)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(wait_s)

    def status(self) -> str:
        """Return the worker's /status/ JSON as text (or why it could not be read)."""
        url = f"{operator_url(self.settings)}/status/"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except OSError as exc:
            return f"(no status from {url}: {exc})"

    def kill(self) -> None:
        """Kill the worker with SIGKILL: no shutdown, no final commit (a crash)."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop the worker as an operator would (SIGTERM), killing it if it hangs."""
        process, self.process = self.process, None
        terminate(process, timeout_s)
