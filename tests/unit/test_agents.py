"""The agents through Faust's own ``test_context()``: records in, records out, no broker.

What an agent produces is captured where it would leave the process (the outbox, or Faust's
``Topic.send`` when batches are off), and dead letters at the dead-letter service, instead of
reaching Kafka; tests/integration/ runs the same agents on a real broker.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import faust
import pytest

import app.pipeline.delivery as delivery_module
from app.kafka.outbox import Outgoing
from app.keys.commands import apply_command
from app.pipeline.candidates import bundle_values
from app.pipeline.delivery import delivery_for
from app.settings import Settings
from app.worker import Pipeline, wire_pipeline
from models.dead_letter import DeadLetter
from models.events import Candidate
from models.keys import AddKeywords, CreateKey

Sent = list[tuple[str, Any, dict[str, Any]]]


@pytest.fixture(scope="module")
async def pipeline() -> AsyncIterator[Pipeline]:
    """The worker's app and agents, wired as the worker wires them (never started).

    Why async: Faust and mode take the running loop; outside one they would make their own.
    """
    wired = wire_pipeline(Settings())
    yield wired
    # Faust's consumer (made by test_context) holds a thread loop it never started: close it.
    consumer: Any = wired.app._consumer
    if consumer is not None:
        consumer._thread.thread_loop.close()


@pytest.fixture
def outputs(
    monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline
) -> Iterator[tuple[Sent, list[DeadLetter]]]:
    services, app = pipeline.services, pipeline.app
    sent: Sent = []
    letters: list[DeadLetter] = []

    async def send(topic: Any, *args: Any, **kwargs: Any) -> None:
        sent.append((topic.get_topic_name(), kwargs.get("key"), json.loads(kwargs["value"])))

    async def send_all(records: list[Outgoing], timeout_s: float) -> None:
        sent.extend((r.topic, r.key, json.loads(r.value)) for r in records)

    def report(letter: DeadLetter, key: bytes | None) -> Any:
        letters.append(letter)

    monkeypatch.setattr(faust.topics.Topic, "send", send)
    monkeypatch.setattr(services.outbox, "send_all", send_all)
    monkeypatch.setattr(services.dead_letters, "report", report)
    app.finalize()
    app.flow_control.resume()
    yield sent, letters


async def test_a_post_becomes_its_candidate_its_jobs_and_its_refused_images(
    outputs: tuple[Sent, list[DeadLetter]], pipeline: Pipeline
) -> None:
    sent, letters = outputs
    process_posts = pipeline.agents["agents.posts.process_posts"]
    post = {
        "source": "x",
        "mid": "1",
        "sid": "2",
        "text": "gm",
        "images": ["https://a.example/x.png", "ftp://b.example/c.png"],
    }
    async with process_posts.test_context() as agent:
        await agent.put(json.dumps(post).encode())
        await agent.put(None)  # a tombstone: its dead letter, and the stream goes on
        await agent.put(json.dumps({**post, "mid": "2", "images": []}).encode())
    images = [(topic, key, body) for topic, key, body in sent if topic != "ocrstream-candidates"]
    assert [(topic, key) for topic, key, _ in images] == [
        ("images", b"https://a.example/x.png"),
        ("ocr_error", b"ftp://b.example/c.png"),
    ]
    assert images[1][2]["error"] == "refused"
    # The candidates travel in bundles keyed by the posts partition, in the posts' order, each
    # naming the key of its channel records.
    bundles = [(key, body) for topic, key, body in sent if topic == "ocrstream-candidates"]
    assert {key for key, _ in bundles} == {b"posts-0"}
    offered = [member for _, body in bundles for member in body["candidates"]]
    assert [(c["event"]["mid"], c["key"]) for c in offered] == [("1", "1"), ("2", "2")]
    [letter] = letters
    assert letter.stage == "posts" and "null value" in letter.reason


async def test_the_filter_delivers_to_each_matching_key_and_refuses_a_bad_channel(
    outputs: tuple[Sent, list[DeadLetter]], pipeline: Pipeline
) -> None:
    sent, letters = outputs
    services = pipeline.services
    filter_candidates = pipeline.agents["agents.filter.filter_candidates"]
    firehose = apply_command(
        None, CreateKey(key_id="aaaaaaaa1111", key_hash="0" * 64, created_at=1, channels=("all",))
    )
    pepe = apply_command(
        None, CreateKey(key_id="bbbbbbbb2222", key_hash="0" * 64, created_at=1, channels=("p",))
    )
    pepe = apply_command(pepe, AddKeywords(key_id=pepe.key_id, keywords=("pepe",)))
    # A record an older version wrote: a channel Kafka refuses, beside a valid one.
    legacy = firehose.model_copy(update={"key_id": "cccccccc3333", "channels": ("..", "ok")})
    for record in (firehose, pepe, legacy):
        services.keys.apply(record.key_id, record)
    services.keys._set_ready()
    event = {"source": "x", "mid": "1", "sid": "2", "text": "gm"}
    try:
        async with filter_candidates.test_context() as agent:
            for text in ("gm", "new $PEPE"):
                candidate = Candidate(event={**event, "text": text}, match_text=text)
                await agent.put(candidate.model_dump_json().encode())
            await agent.put(b"{not json")
    finally:
        for record in (firehose, pepe, legacy):
            services.keys.apply(record.key_id, None)
    delivered = [(topic, body["text"], body.get("keyword_matches")) for topic, _, body in sent]
    assert delivered == [
        ("all", "gm", None),
        ("ok", "gm", None),
        ("all", "new $PEPE", None),
        ("p", "new $PEPE", ["pepe"]),
        ("ok", "new $PEPE", None),
    ]
    reasons = [letter.reason for letter in letters]
    assert sum("cccccccc3333: channel refused" in r for r in reasons) == 2
    assert any(r.startswith("invalid candidate") for r in reasons)


async def test_a_bundle_is_delivered_candidate_by_candidate_and_a_failure_costs_only_one(
    outputs: tuple[Sent, list[DeadLetter]], monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline
) -> None:
    sent, letters = outputs
    services = pipeline.services
    filter_candidates = pipeline.agents["agents.filter.filter_candidates"]
    firehose = apply_command(
        None, CreateKey(key_id="dddddddd4444", key_hash="0" * 64, created_at=1, channels=("all",))
    )
    services.keys.apply(firehose.key_id, firehose)
    services.keys._set_ready()
    original = delivery_for

    def fails_on_boom(key: Any, candidate: Candidate) -> Any:
        if candidate.match_text == "boom":
            raise RuntimeError("a bug met by one candidate")
        return original(key, candidate)

    # An injected bug (a unit test of the boundary): the bundle's other candidates still go.
    monkeypatch.setattr(delivery_module, "delivery_for", fails_on_boom)
    texts = ["gm", "boom", "wagmi"]
    candidates = [
        Candidate(event={"source": "x", "mid": str(i), "text": t}, match_text=t, key=str(i))
        for i, t in enumerate(texts)
    ]
    try:
        async with filter_candidates.test_context() as agent:
            for value in bundle_values(candidates):
                await agent.put(value, key=b"posts-0")
    finally:
        services.keys.apply(firehose.key_id, None)
    assert [(topic, key, body["text"]) for topic, key, body in sent] == [
        ("all", b"0", "gm"),
        ("all", b"2", "wagmi"),
    ]
    [letter] = letters
    assert "a bug met by one candidate" in letter.reason
    assert json.loads(letter.record)["match_text"] == "boom"  # its own bytes, not the bundle's


async def test_an_unexpected_error_in_a_batchs_shared_work_dead_letters_its_records(
    outputs: tuple[Sent, list[DeadLetter]], monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline
) -> None:
    _, letters = outputs
    services = pipeline.services
    process_posts = pipeline.agents["agents.posts.process_posts"]

    async def broken(records: list[Outgoing], timeout_s: float) -> list[Outgoing]:
        raise RuntimeError("a bug in the shared work")

    # Before: the error left the agent's loop; each record of the batch now gets its outcome.
    monkeypatch.setattr(services.outbox, "send_until_done", broken)
    post = {"source": "x", "mid": "9", "sid": "2", "text": "gm", "images": []}
    async with process_posts.test_context() as agent:
        await agent.put(json.dumps(post).encode())
        await agent.put(json.dumps({**post, "mid": "10"}).encode())
    assert letters and all("a bug in the shared work" in letter.reason for letter in letters)
    assert all(letter.stage == "posts" for letter in letters)


async def test_an_unexpected_error_waiting_for_keys_dead_letters_the_filters_batch(
    outputs: tuple[Sent, list[DeadLetter]], monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline
) -> None:
    _, letters = outputs
    filter_candidates = pipeline.agents["agents.filter.filter_candidates"]

    async def broken() -> None:
        raise RuntimeError("a bug while waiting for keys")

    monkeypatch.setattr(pipeline.services.keys, "wait_ready", broken)
    candidate = Candidate(event={"source": "x", "mid": "1", "sid": "2", "text": "gm"})
    async with filter_candidates.test_context() as agent:
        await agent.put(candidate.model_dump_json().encode())
    [letter] = letters
    assert letter.stage == "filter" and "a bug while waiting for keys" in letter.reason


async def test_an_unexpected_error_in_the_books_shared_work_dead_letters_its_records(
    outputs: tuple[Sent, list[DeadLetter]], monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline
) -> None:
    _, letters = outputs
    record_sightings = pipeline.agents["agents.sightings.record_sightings"]

    async def broken(records: list[Outgoing], timeout_s: float) -> list[Outgoing]:
        raise RuntimeError("a bug in the book's shared work")

    monkeypatch.setattr(pipeline.services.outbox, "send_until_done", broken)
    event = {"source": "x", "mid": "7", "sid": "2", "link": "", "text": "CA"}
    candidate = Candidate(
        event=event,
        event_id="post:x:7",
        addresses=[{"network": "evm", "address": "0x" + "1" * 40}],
        seen_at=1_800_000_000.0,
    )
    async with record_sightings.test_context() as agent:
        await agent.put(candidate.model_dump_json().encode())
    [letter] = letters
    assert letter.stage == "sightings" and "a bug in the book's shared work" in letter.reason
