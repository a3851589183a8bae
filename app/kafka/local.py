"""A real single-node Apache Kafka (KRaft) for local runs, tests and CI.

The broker's jars come from Maven Central through ``kafka/pom.xml`` (pinned version) and are
cached outside the repository; the broker runs as a child ``java`` process on loopback.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from app.kafka.acls import Acl, grant
from app.kafka.secure_local import SecureMaterial, broker_properties, scram_format_arguments

log = logging.getLogger(__name__)

POM = Path(__file__).resolve().parents[2] / "kafka" / "pom.xml"
# Why: bump together with <kafka.version> in kafka/pom.xml.
KAFKA_VERSION = "4.1.1"
DEFAULT_CACHE = Path.home() / ".cache" / "ocrstream" / "kafka"
READY_LINE = "Kafka Server started"


class LocalKafkaError(RuntimeError):
    """The local broker could not be fetched or started; the message says why."""


def terminate(process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """Stop a child process with SIGTERM; SIGKILL it if it has not exited after ``timeout_s``."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    """Return a TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Tell whether nothing listens on ``port`` on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def ensure_jars(cache_dir: Path) -> Path:
    """Return the directory of the broker's jars, fetching them with Maven the first time."""
    # Why the pom's hash in the name: a cache fetched for another list of jars is not this one.
    pom_hash = hashlib.sha256(POM.read_bytes()).hexdigest()[:8]
    jars = cache_dir / f"jars-{KAFKA_VERSION}-{pom_hash}"
    marker = jars / ".complete"
    if marker.exists():
        return jars
    if shutil.which("mvn") is None:
        raise LocalKafkaError("Maven (mvn) is needed to fetch the Kafka broker; install it")
    log.info("fetching Apache Kafka %s jars from Maven Central into %s", KAFKA_VERSION, jars)
    tmp = cache_dir / f"jars-{KAFKA_VERSION}-{pom_hash}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    command = [
        "mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}", "-DincludeScope=runtime",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LocalKafkaError(f"Maven could not fetch Kafka:\n{done.stdout[-3000:]}{done.stderr}")
    (tmp / ".complete").touch()
    shutil.rmtree(jars, ignore_errors=True)
    tmp.rename(jars)
    return jars


def dies_with_parent(command: list[str]) -> list[str]:
    """Return ``command`` so that it gets SIGTERM when the process starting it dies.

    Why: a broker is a child JVM in a session of its own (Ctrl-C is ours to handle), so
    nothing else would end it when ``ocrstream kafka`` (or a test run) is killed outright.
    ``setpriv --pdeathsig`` (util-linux, on every Debian) asks Linux for that signal and then
    runs the command in its place (the same process id). Linux sends it when the thread that
    started the child ends: start brokers from the main thread. Elsewhere: as it is.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", *command] if setpriv else command


class LocalKafka:
    """One KRaft broker+controller on loopback, with its data in ``data_dir``.

    Alone by default (a single-node cluster); ``LocalKafkaCluster`` runs several as voters of
    one controller quorum, each with ``node_id``, the shared ``voters`` and ``replication``.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        cache_dir: Path | None = None,
        *,
        node_id: int = 1,
        controller_port: int = 0,
        voters: str = "",
        replication: int = 1,
        cluster_id: str = "",
        broker_config: dict[str, str] | None = None,
        secure: SecureMaterial | None = None,
    ) -> None:
        self.data_dir = data_dir
        # Set: clients need SASL_SSL or a client certificate, and ACLs (app/kafka/secure_local.py).
        self.secure = secure
        self.tls_port = free_port() if secure is not None else 0
        # Server properties over the defaults below (e.g. a small message.max.bytes in tests).
        self.broker_config = dict(broker_config or {})
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.cache_dir = cache_dir or DEFAULT_CACHE
        self.node_id = node_id
        self.voters = voters or f"{node_id}@127.0.0.1:{self.controller_port}"
        self.replication = replication
        self.cluster_id = cluster_id or uuid.uuid4().hex[:22]
        self._process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    @property
    def bootstrap(self) -> str:
        """Return ``host:port`` for clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def tls_bootstrap(self) -> str:
        """Return ``host:port`` of the mutual-TLS listener of a secured broker."""
        return f"127.0.0.1:{self.tls_port}"

    def grant_acls(self, principal: str, rules: list[Acl]) -> None:
        """Grant ``rules`` to ``principal`` on this secured broker, as its admin."""
        if self.secure is None:
            raise LocalKafkaError("ACLs need a secured broker (secure=...)")
        admin_properties = self.secure.admin_properties(self.bootstrap)
        grant(ensure_jars(self.cache_dir), self.bootstrap, admin_properties, principal, rules)

    @property
    def log_file(self) -> Path:
        """Return the file the broker writes its log to."""
        return self.data_dir / "broker.log"

    @property
    def running(self) -> bool:
        """Tell whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> Path:
        config = self.data_dir / "server.properties"
        replicas = str(self.replication)
        # Why 2 of 3: a write acknowledged by two replicas survives one broker lost; with one
        # broker there is nobody else to wait for.
        min_isr = str(min(2, self.replication))
        lines = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "logs"),
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            # Why: a single test node has no one to wait for before the first rebalance.
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": "1",
        }
        if self.secure is not None:
            lines.update(
                broker_properties(self.secure, self.port, self.controller_port, self.tls_port)
            )
        lines.update(self.broker_config)
        config.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        return config

    def _java(self, jars: Path, main: str, *args: str, heap: str = "256m") -> list[str]:
        return [
            "java", f"-Xmx{heap}", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
            "-cp", f"{jars}/*", main, *args,
        ]  # fmt: skip

    def start(self, timeout_s: float = 90.0) -> None:
        """Fetch jars if needed, format storage on first use, start and wait until ready."""
        self.launch()
        self.wait_ready(timeout_s)

    def launch(self) -> None:
        """Start the broker process without waiting (a cluster's nodes need each other)."""
        jars = ensure_jars(self.cache_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self.data_dir / "logs" / "meta.properties").exists():
            fmt = self._java(jars, "kafka.tools.StorageTool", "format", "-t", self.cluster_id,
                             "-c", str(config))  # fmt: skip
            if self.secure is not None:
                fmt += scram_format_arguments(self.secure)
            done = subprocess.run(fmt, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise LocalKafkaError(f"formatting Kafka storage failed:\n{done.stdout[-2000:]}")
        # Why from here: a restart appends to the same log, and the ready line is looked for
        # only in what this process wrote.
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log_out:
            self._process = subprocess.Popen(
                dies_with_parent(self._java(jars, "kafka.Kafka", str(config), heap="768m")),
                stdout=log_out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a terminal is handled by us, not the JVM
            )

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Wait until the launched broker says it started and listens (or raise)."""
        self._wait_ready(timeout_s, self._log_start)
        log.info("Apache Kafka %s node %d ready on %s (data in %s)", KAFKA_VERSION,
                 self.node_id, self.bootstrap, self.data_dir)  # fmt: skip

    def _wait_ready(self, timeout_s: float, log_start: int) -> None:
        deadline = time.monotonic() + timeout_s
        seen_ready = False
        carry = b""  # the end of the last read: the ready line may straddle two reads
        with self.log_file.open("rb") as log_in:
            log_in.seek(log_start)
            while time.monotonic() < deadline:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise LocalKafkaError(
                        f"Kafka exited with code {self._process.returncode}; "
                        f"last log lines:\n{self._tail()}"
                    )
                # Why every new line, not the last few: with many partitions, a restart logs
                # hundreds of lines right after the ready line.
                text = carry + log_in.read()
                seen_ready = seen_ready or READY_LINE.encode() in text
                carry = text[-len(READY_LINE) :]
                if seen_ready and not port_is_free(self.port):
                    return
                time.sleep(0.2)
        self.stop()
        raise LocalKafkaError(f"Kafka did not start within {timeout_s:.0f}s:\n{self._tail()}")

    def _tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def wait(self) -> None:
        """Wait until the broker process ends (it runs in the foreground of ``ocrstream kafka``)."""
        if self._process is not None:
            self._process.wait()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the broker cleanly (SIGTERM), killing it if it does not exit in time."""
        process, self._process = self._process, None
        terminate(process, timeout_s)

    @property
    def pid(self) -> int | None:
        """Return the broker process's id while it runs (the JVM's: setpriv runs it in place)."""
        return self._process.pid if self.running and self._process is not None else None

    def ask_to_stop(self) -> None:
        """Send SIGTERM without waiting (``stop`` then waits): a cluster stops all at once."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the broker with SIGKILL: no controlled shutdown, no leadership handed over."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalKafkaCluster:
    """Several KRaft nodes on loopback, each broker and controller (combined mode).

    Every node votes in the controller quorum, so a cluster of three keeps a controller and a
    leader for every partition with one node down. Topics default to replication ``min(3, n)``
    and ``min.insync.replicas`` 2.
    """

    def __init__(
        self,
        data_dir: Path,
        brokers: int = 3,
        cache_dir: Path | None = None,
        secure: SecureMaterial | None = None,
    ) -> None:
        if brokers < 1:
            raise ValueError("a cluster needs at least one broker")
        controller_ports = [free_port() for _ in range(brokers)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{port}" for i, port in enumerate(controller_ports))
        cluster_id = uuid.uuid4().hex[:22]
        self.nodes = [
            LocalKafka(
                data_dir / f"node{i + 1}",
                cache_dir=cache_dir,
                node_id=i + 1,
                controller_port=port,
                voters=voters,
                replication=min(3, brokers),
                cluster_id=cluster_id,
                secure=secure,
            )
            for i, port in enumerate(controller_ports)
        ]

    @property
    def bootstrap(self) -> str:
        """Return every node's ``host:port``, comma-separated, for clients."""
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def tls_bootstrap(self) -> str:
        """Return every node's mutual-TLS listener (a secured cluster), comma-separated."""
        return ",".join(node.tls_bootstrap for node in self.nodes)

    def node(self, node_id: int) -> LocalKafka:
        """Return the node with this id (1-based, as Kafka numbers them)."""
        return self.nodes[node_id - 1]

    def start(self, timeout_s: float = 120.0) -> None:
        """Start every node, then wait for each (none is ready before a quorum is up)."""
        for node in self.nodes:
            node.launch()
        try:
            for node in self.nodes:
                node.wait_ready(timeout_s)
        except LocalKafkaError:
            self.stop()
            raise

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every node: all asked at once, then each waited for (killed past the time)."""
        for node in self.nodes:
            node.ask_to_stop()
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            node.stop(max(1.0, deadline - time.monotonic()))

    def __enter__(self) -> LocalKafkaCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
