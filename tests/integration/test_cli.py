"""Keys and keywords from the command line, against a real broker and a running worker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.kafka.admin import ensure_topics
from app.kafka.local import LocalKafka
from app.samples import sample_bytes, sample_url
from harness.workers import REPO, settings_env, unique_settings

pytestmark = pytest.mark.integration


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_keys_and_keywords_round_trip_through_the_worker(
    kafka: LocalKafka, start_worker: Any
) -> None:
    settings = unique_settings(kafka)
    start_worker(settings)
    env = settings_env(settings)

    created = _cli(env, "keys", "create", "--label", "cli test")
    assert created.returncode == 0, created.stderr
    key_id = re.search(r"key id:\s+(\S+)", created.stdout)
    api_key = re.search(r"api key:\s+(osk_\S+)", created.stdout)
    assert key_id and api_key, created.stdout
    assert f"channels: {settings.channel_topic(key_id[1])}" in created.stdout
    assert "no worker has applied it" not in created.stderr

    added = _cli(env, "keywords", "add", api_key[1], " PEPE ", "Doge", "pepe")
    assert added.returncode == 0, added.stderr
    assert added.stdout.split() == ["pepe", "doge"]

    too_many = _cli(env, "keywords", "add", key_id[1], *[f"w{i}" for i in range(99)])
    assert too_many.returncode == 2
    assert "at most 100 keywords" in too_many.stderr
    too_long = _cli(env, "keywords", "add", key_id[1], "x" * 101)
    assert too_long.returncode == 2
    assert "longer than 100" in too_long.stderr

    removed = _cli(env, "keywords", "remove", key_id[1], "DOGE")
    assert removed.stdout.split() == ["pepe"]
    assert _cli(env, "keywords", "list", key_id[1]).stdout.split() == ["pepe"]

    hooked = _cli(env, "keys", "webhooks", key_id[1], "https://hooks.example.com/ocr")
    assert hooked.returncode == 0, hooked.stderr
    secret = re.search(r"signing secret:\s+(whsec_\S+)", hooked.stdout)
    assert secret and "no worker applied" not in hooked.stderr, hooked.stdout + hooked.stderr
    strict = env | {"OCRSTREAM_FETCH_ALLOW_PRIVATE": "false"}
    internal = _cli(strict, "keys", "webhooks", key_id[1], "http://169.254.169.254/latest")
    assert internal.returncode == 2 and "refused" in internal.stderr

    listed = _cli(env, "keys", "list")
    assert "webhooks=1" in listed.stdout and secret[1] not in listed.stdout
    assert _cli(env, "keys", "webhooks", key_id[1], "--clear").returncode == 0
    listed = _cli(env, "keys", "list")
    assert "webhooks=0" in listed.stdout
    assert key_id[1] in listed.stdout and "active" in listed.stdout
    assert api_key[1] not in listed.stdout
    assert _cli(env, "keys", "revoke", key_id[1]).returncode == 0
    assert "revoked" in _cli(env, "keys", "list").stdout

    unknown = _cli(env, "keywords", "list", "nosuchkey123")
    assert unknown.returncode == 2
    assert "unknown key" in unknown.stderr


def test_the_readme_tour_runs_as_written(kafka: LocalKafka, start_worker: Any) -> None:
    """The second terminal of README.md's tour, command by command, against a real worker."""
    # Samples on as `ocrstream run` has them; loopback refused as in production: the sample is
    # read from the package, not downloaded from the worker itself.
    settings = unique_settings(kafka, serve_samples=True, fetch_allow_private=False)
    start_worker(settings)
    readme = (REPO / "README.md").read_text()
    tour = readme.split("## A 60-second tour", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line for line in tour.splitlines() if line and not line.startswith(("#", "export"))]
    assert [c.split()[1] for c in commands] == ["keys", "keywords", "post", "tail", "ocr"]
    env = settings_env(settings)  # the tour's OCRSTREAM_BROKER, and this test's own topics
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env['PATH']}"
    outputs: list[str] = []
    key_id = ""
    for command in commands:
        line = command.split("  #", 1)[0].replace("KEY_ID", key_id)
        done = subprocess.run(
            ["bash", "-c", line],  # the console script make installed in .venv, as in README
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        outputs.append(done.stdout)
        found = re.search(r"key id:\s+(\S+)", done.stdout)
        key_id = found[1] if found else key_id
    delivered = outputs[3]  # the ocr_result of the sample: "pepe" is only in the image
    assert delivered.count("\n") == 1 and "ocr_result" in delivered, delivered
    assert "CA evm:0x979097B35B88A0c32751f9732d5d37c609B3f1Ad" in delivered
    assert "keywords pepe" in delivered and "$PEPE presale live" in delivered
    assert "$PEPE presale live" in outputs[4]  # the OCR of the sample image
    with urllib.request.urlopen(sample_url(settings, "pepe.png"), timeout=10) as response:
        assert response.headers["Content-Type"] == "image/png"
        assert response.read() == sample_bytes("pepe.png")  # a browser sees what was read
    # POST /ocr reads the same sample URL as the pipeline does (before: 422, "127.0.0.1 is not
    # a public address"); another loopback URL stays refused, naming the setting.
    api_key = re.search(r"osk_\S+", outputs[0])
    assert api_key, outputs[0]
    base = f"http://127.0.0.1:{settings.web_port}"
    status, answer = _post_json(
        f"{base}/ocr", {"imageUrl": sample_url(settings, "pepe.png")}, api_key[0]
    )
    assert status == 200 and "$PEPE presale live" in answer["data"]["text"], answer
    status, answer = _post_json(f"{base}/ocr", {"imageUrl": f"{base}/openapi.json"}, api_key[0])
    assert status == 422 and "OCRSTREAM_FETCH_ALLOWED_NETWORKS" in answer["error"], answer


def _post_json(url: str, body: dict[str, Any], api_key: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "x-api-key": api_key},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


async def test_a_file_of_posts_is_sent_and_each_refused_line_named(
    kafka: LocalKafka, tmp_path: Path
) -> None:
    settings = unique_settings(kafka)
    await ensure_topics(settings)
    env = settings_env(settings)
    good = [json.dumps({"mid": f"f{i}", "text": f"post {i}"}) for i in range(1200)]
    lines = [*good[:600], "not json", '{"source": "myspace"}', *good[600:], "[]"]
    posts = tmp_path / "posts.jsonl"
    posts.write_text("\n".join(lines) + "\n")

    sent = _cli(env, "post", "--file", str(posts))
    assert sent.returncode == 1, sent.stderr  # 1: some lines were refused
    assert re.search(
        r"sent 1,200 posts to \S+ in [\d.]+ s \([\d,]+ posts/s\); refused 3", sent.stdout
    )
    assert "line 601: not JSON" in sent.stderr
    assert "line 602: " in sent.stderr and "line 1203: not a JSON object" in sent.stderr

    piped = subprocess.run(
        [sys.executable, "-m", "app", "post", "--file", "-"],
        input=good[0] + "\n", cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert piped.returncode == 0 and "sent 1 posts" in piped.stdout, piped.stderr

    # Without --follow, tail prints what is there and stops: the last 10, or all of them.
    last = _cli(env, "tail", settings.posts_topic)
    assert last.returncode == 0 and len(last.stdout.splitlines()) == 10, last.stdout
    everything = _cli(env, "tail", settings.posts_topic, "--from-beginning", "--json")
    assert everything.returncode == 0, everything.stderr
    mids = [json.loads(line)["mid"] for line in everything.stdout.splitlines()]
    assert sorted(mids) == sorted([f"f{i}" for i in range(1200)] + ["f0"])
    missing = _cli(env, "tail", "no-such-topic-here", "--timeout", "5")
    assert missing.returncode == 2 and "no topic 'no-such-topic-here'" in missing.stderr


async def test_tail_gives_exactly_the_last_n_merged_over_partitions_in_time_order(
    kafka: LocalKafka,
) -> None:
    settings = unique_settings(kafka)
    topic = f"{settings.posts_topic}-tail"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        # Written partition by partition, so offsets and times disagree: record i is at
        # second i, on partition i % 3.
        start_ms = int(time.time() * 1000) - 60_000
        for partition in range(3):
            for i in range(partition, 30, 3):
                value = json.dumps({"i": i}).encode()
                await producer.send_and_wait(
                    topic, value, partition=partition, timestamp_ms=start_ms + i * 1000
                )
    finally:
        await producer.stop()
    env = settings_env(settings)

    def order(*args: str) -> list[int]:
        done = _cli(env, "tail", topic, "--json", *args)
        assert done.returncode == 0, done.stderr
        return [json.loads(line)["i"] for line in done.stdout.splitlines()]

    # Before: 12 for "the last 10" and 8 for --last 5, partition by partition.
    assert order() == list(range(20, 30))
    assert order("--last", "5") == list(range(25, 30))
    assert order("--last", "1") == [29]
    assert order("--from-beginning") == list(range(30))
    assert order("--from-beginning", "--count", "4") == [0, 1, 2, 3]


def test_the_worker_refuses_more_replicas_than_the_cluster_has_brokers(
    kafka: LocalKafka,
) -> None:
    settings = unique_settings(kafka, topic_replicas=3)
    refused = _cli(settings_env(settings), "worker")
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "OCRSTREAM_TOPIC_REPLICAS is 3 but the cluster" in refused.stderr
    assert "has 1 broker(s)" in refused.stderr
    too_strict = unique_settings(kafka, min_insync_replicas=2)
    refused = _cli(settings_env(too_strict), "worker")
    assert refused.returncode == 2 and "no write could succeed" in refused.stderr
