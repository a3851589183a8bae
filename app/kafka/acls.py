"""The ACLs a worker needs on a broker with an authorizer: no more than these.

docs/operations.md lists them (a test checks the two agree), ``ocrstream kafka --secure`` grants
them to its worker user, and the secured integration test runs the pipeline with only them.
They are granted with Kafka's own tool (``kafka-acls``, its ``AclCommand``), the way an operator
grants them on any cluster.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.settings import Settings

# What the worker does with its topics: create them if missing (with their configs), learn
# their limits (max.message.bytes), read and write them.
TOPIC_OPERATIONS = ("Read", "Write", "Create", "Describe", "DescribeConfigs")


@dataclass(frozen=True)
class Acl:
    """One allow rule: operations on a resource (a name, or every name with this prefix)."""

    resource: Literal["topic", "group"]
    name: str
    pattern: Literal["literal", "prefixed"]
    operations: tuple[str, ...]
    why: str

    def command_arguments(self, principal: str) -> list[str]:
        """Return ``kafka-acls --add`` arguments that grant this rule to ``principal``."""
        arguments = ["--add", "--allow-principal", principal]
        for operation in self.operations:
            arguments += ["--operation", operation]
        arguments += [f"--{self.resource}", self.name]
        return [*arguments, "--resource-pattern-type", self.pattern]


def worker_acls(settings: Settings) -> list[Acl]:
    """Return every ACL the worker's principal needs with these settings.

    None on the cluster: counting the brokers (DescribeCluster) and the idempotent producer
    need no cluster ACL on Kafka 3 and later (KIP-679: Write on a topic suffices).
    """
    own_topics = [
        name for name in settings.pipeline_topics() if name != settings.keys_changelog_topic
    ]
    rules = [
        Acl("topic", name, "literal", TOPIC_OPERATIONS, "a pipeline topic")
        for name in sorted(own_topics)
    ]
    rules += [
        Acl(
            "topic",
            f"{settings.app_id}-",
            "prefixed",
            TOPIC_OPERATIONS,
            "Faust's own topics: the keys table's changelog, the assignor's leader topic",
        ),
        Acl(
            "topic",
            settings.channel_topic_prefix,
            "prefixed",
            ("Write", "Create", "Describe", "DescribeConfigs"),
            "the keys' channel topics (a channel named otherwise needs the same)",
        ),
        Acl(
            "group",
            settings.app_id,
            "prefixed",
            ("Read",),
            f"the worker's consumer groups: {settings.app_id} (Faust) and "
            f"{settings.app_id}-webhooks",
        ),
    ]
    return rules


def grant(
    jars: Path, bootstrap: str, admin_properties: Path, principal: str, rules: list[Acl]
) -> None:
    """Grant ``rules`` to ``principal`` with Kafka's AclCommand, as the admin of the properties."""
    # Why grouped: one JVM per kind of rule, not per topic (each start costs a second or two).
    groups: dict[tuple[str, str, tuple[str, ...]], list[Acl]] = {}
    for rule in rules:
        groups.setdefault((rule.resource, rule.pattern, rule.operations), []).append(rule)
    for same in groups.values():
        arguments = same[0].command_arguments(principal)
        for rule in same[1:]:
            arguments += [f"--{rule.resource}", rule.name]
        command = [
            "java", "-Xmx256m", "-cp", f"{jars}/*", "org.apache.kafka.tools.AclCommand",
            "--bootstrap-server", bootstrap, "--command-config", str(admin_properties),
            *arguments,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"kafka-acls failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")


def acl_commands(settings: Settings, principal: str = "User:ocrstream") -> str:
    """Return the ``kafka-acls`` commands that grant the worker its ACLs, as a shell block."""
    lines = ["```sh"]
    for rule in worker_acls(settings):
        lines.append(f"# {rule.why}")
        lines.append("kafka-acls.sh --bootstrap-server $BROKER --command-config $ADMIN_PROPS \\")
        lines.append("  " + " ".join(rule.command_arguments(principal)))
    lines.append("```")
    return "\n".join(lines) + "\n"
