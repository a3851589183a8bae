"""Stopping stops everything it started: `ocrstream kafka`'s JVMs, and a worker on Ctrl-C.

Before: SIGTERM ended `ocrstream kafka` at once and left its JVMs running (found with pgrep
30 s later), one or three. The JVMs run in sessions of their own (Ctrl-C is the command's to
handle), so only the command itself, or Linux's parent-death signal, can end them. And Ctrl-C
of a worker took 3.3-7.1 s and printed a traceback from each OCR process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.kafka.access import check_access
from app.kafka.local import LocalKafka, free_port
from app.settings import Settings
from harness.workers import REPO, settings_env, unique_settings

pytestmark = pytest.mark.integration


def _sigint_as_from_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(
    data: Path, brokers: int, *options: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``ocrstream kafka`` and wait for its ready line."""
    command = [
        sys.executable,
        "-m",
        "app",
        "kafka",
        "--data",
        str(data),
        "--port",
        str(free_port()),
    ]
    if brokers > 1:
        command += ["--brokers", str(brokers)]
    process = subprocess.Popen(
        [*command, *options],
        # As from a terminal: a shell without job control starts background commands (a CI
        # script's `&`) with SIGINT ignored, and Python keeps an ignored SIGINT ignored.
        preexec_fn=_sigint_as_from_a_terminal,
        cwd=REPO,
        env={**(env or os.environ), "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 180
    for line in process.stdout:
        if "ready on" in line:
            return process
        assert time.monotonic() < deadline, "no ready line"
    raise AssertionError(f"ocrstream kafka exited: {process.wait()}")


def _jvms(data: Path) -> set[int]:
    """Return the ids of the broker JVMs whose data is under ``data`` (their config is there)."""
    found = subprocess.run(["pgrep", "-f", f"kafka.Kafka {data}"], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def _gone_within(pids: set[int], timeout_s: float) -> float:
    """Return the seconds until none of ``pids`` runs; fail past ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        alive = {pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)}
        if not alive:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"broker JVMs {sorted(alive)} still run {timeout_s:.0f} s later")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False


@pytest.mark.parametrize(
    ("brokers", "how"),
    [(1, signal.SIGTERM), (1, signal.SIGINT), (1, signal.SIGKILL), (3, signal.SIGTERM)],
    ids=["one-sigterm", "one-sigint", "one-killed", "three-sigterm"],
)
def test_every_broker_jvm_ends_with_the_command(
    tmp_path: Path, brokers: int, how: signal.Signals
) -> None:
    process = _start(tmp_path, brokers)
    jvms = _jvms(tmp_path)
    try:
        assert len(jvms) == brokers, jvms
        process.send_signal(how)
        took = _gone_within(jvms, 30)
        process.wait(30)
    finally:
        # Why: a failure must not leave JVMs or the pipe behind for the tests after it.
        for pid in _jvms(tmp_path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.wait(30)
        assert process.stdout is not None
        process.stdout.close()
    print(f"\n{brokers} broker(s), {how.name}: every JVM gone {took:.1f} s later")


def test_ctrl_c_stops_the_worker_quietly_within_two_seconds(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    settings = unique_settings(kafka)
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as out:
        # A session of its own: Ctrl-C is a SIGINT to every process of the terminal's group,
        # the worker's OCR processes included.
        worker = subprocess.Popen(
            [sys.executable, "-m", "app", "worker", "--loglevel", "info"],
            cwd=tmp_path,
            env=settings_env(settings) | {"PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while "[^Worker]: Ready" not in log_path.read_text(errors="replace"):
        assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.25)
    time.sleep(2)
    started = time.monotonic()
    os.killpg(worker.pid, signal.SIGINT)
    worker.wait(30)
    took = time.monotonic() - started
    log = log_path.read_text(errors="replace")
    print(f"\nthe worker stopped {took:.1f} s after Ctrl-C")
    # Before: 3.3-7.1 s, a banner of -INT- and a KeyboardInterrupt traceback per OCR process.
    assert worker.returncode == 0 and took < 2.0, log[-3000:]
    assert "Traceback" not in log and "KeyboardInterrupt" not in log and "-INT-" not in log


def test_a_secured_broker_prints_settings_that_a_worker_can_use_as_they_are(
    tmp_path: Path, kafka: LocalKafka
) -> None:
    settings = unique_settings(kafka)  # only for an app id and topic names of its own
    process = _start(tmp_path, 1, "--secure", env=settings_env(settings))
    try:
        assert process.stdout is not None
        printed = {}
        for line in process.stdout:
            if line.strip().startswith(("worker (SCRAM):", "worker (mutual TLS):")):
                how, _, pairs = line.strip().partition(": ")
                printed[how] = dict(pair.split("=", 1) for pair in pairs.split())
            if "--command-config" in line:
                break
        for env in printed.values():
            fields = {k.removeprefix("OCRSTREAM_").lower(): v for k, v in env.items()}
            secured = Settings.model_validate(settings.model_dump() | fields)
            asyncio.run(check_access(secured))  # the credentials work, and the ACLs suffice
        assert set(printed) == {"worker (SCRAM)", "worker (mutual TLS)"}
        assert printed["worker (SCRAM)"]["OCRSTREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        if process.stdout is not None:
            process.stdout.close()
