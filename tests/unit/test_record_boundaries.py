"""Generated input at every record boundary: each record becomes a result or a stated refusal.

Whatever bytes arrive on a topic (nulls, junk, deep or huge JSON, odd Unicode, almost-valid
records), the functions the agents call either return their result or raise RecordRefused
with a reason; nothing else escapes, so no record can crash an agent.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.keys.commands import ControlError, apply_command, check_targets
from app.keys.keywords import KeywordError
from app.pipeline.book_keeping import _read as read_booked
from app.pipeline.candidates import read_candidates
from app.pipeline.posts import parse_post, plan_post
from app.pipeline.records import RecordRefused, decode_record, decode_with
from app.settings import Settings
from models.delivery_jobs import delivery_job_adapter
from models.events import ImageJob
from models.keys import KeyRecord, control_command_adapter
from tests.strategies import json_values as json_values_of

MAX_TEXT = 1000
MAX_IMAGES = 4
SETTINGS = Settings(broker="localhost:9092")
BOUNDARY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any JSON document, including the odd corners: deep nesting, big numbers, odd Unicode.
json_values = json_values_of()
odd_text = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(["\x00", "\u202e", "\ufeff", "é"]),
    max_size=40,
)
image_entries = st.one_of(
    st.sampled_from(
        [
            "https://pbs.example/a.png",
            "http://alice:S3cret@host.example/a.png?token=t",
            "ftp://host/a.png",
            "file:///etc/passwd",
            "http://",
            "https://[::1/a.png",
            "http://[64:ff9b::7f00:1]/a.png",
            "https://" + "a" * 3000 + ".example/x.png",
        ]
    ),
    odd_text,
    json_values,
)
post_like = st.fixed_dictionaries(
    {},
    optional={
        "source": st.sampled_from(["x", "telegram", "discord", "myspace", ""]) | json_values,
        "mid": st.integers() | odd_text | json_values,
        "sid": st.integers() | odd_text,
        "link": odd_text,
        "text": odd_text | st.text(min_size=MAX_TEXT, max_size=MAX_TEXT + 5),
        "images": st.lists(image_entries, max_size=8) | json_values,
        "timestamp": st.integers() | odd_text | st.floats(allow_nan=False),
        "refused_images": json_values,
    },
)


def _raw_records() -> st.SearchStrategy[bytes | None]:
    """Bytes as they may sit on a topic: null, junk, any JSON, deep JSON, post-like JSON."""
    deep = st.integers(min_value=100, max_value=3000).map(lambda n: b"[" * n + b"]" * n)
    lone_surrogate = st.just(b'{"source": "x", "mid": "1", "sid": "2", "text": "\\ud800"}')
    huge_number = st.just(b'{"source": "x", "mid": ' + b"9" * 5000 + b', "sid": "2"}')
    return st.one_of(
        st.none(),
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        post_like.map(lambda v: json.dumps(v).encode()),
        deep,
        lone_surrogate,
        huge_number,
    )


@BOUNDARY
@given(raw=_raw_records())
def test_a_post_record_is_a_post_or_a_stated_refusal(raw: bytes | None) -> None:
    try:
        post = parse_post(raw, MAX_TEXT)
    except RecordRefused as exc:
        assert str(exc)
        return
    plan = plan_post(post, MAX_IMAGES)
    # Every image of the post is accounted for: a job, an ocr_error, or in the overflow note.
    given_images = len(post.images) + len(post.refused_images)
    assert len(plan.jobs) + len(plan.refused) == min(len(post.images), MAX_IMAGES) + min(
        len(post.refused_images), MAX_IMAGES
    )
    assert (plan.overflow is not None) == (len(plan.jobs) + len(plan.refused) < given_images)
    # What is produced can be encoded: no lone surrogate or other unencodable text slips through.
    plan.candidate.model_dump_json().encode()
    for job in plan.jobs:
        job.image_url.encode()
        job.model_dump_json().encode()
    for error, event_id in plan.refused:
        error.image_url.encode()
        error.model_dump_json().encode()
        event_id.encode()


@BOUNDARY
@given(raw=_raw_records())
def test_internal_records_decode_or_are_refused(raw: bytes | None) -> None:
    for decode, what in (
        (lambda: decode_record(raw, ImageJob, "image job"), "image job"),
        (lambda: decode_with(raw, delivery_job_adapter, "delivery job"), "delivery job"),
    ):
        try:
            decoded: Any = decode()
        except RecordRefused as exc:
            assert what in str(exc)
            continue
        decoded.model_dump_json().encode()
    try:
        read_booked(SimpleNamespace(value=raw))
    except RecordRefused as exc:
        assert "sightings record" in str(exc)
    try:
        offered = read_candidates(raw)
    except RecordRefused as exc:
        assert "candidate" in str(exc)
        return
    for item in offered:
        item.candidate.model_dump_json().encode()
        item.own_bytes()


command_like = st.fixed_dictionaries(
    {
        "op": st.sampled_from(
            [
                "create_key",
                "revoke_key",
                "add_keywords",
                "remove_keywords",
                "set_channels",
                "set_webhooks",
                "drop_table",
            ]
        ),
        "key_id": st.sampled_from(["abcdef123456", "ABC", ""]) | odd_text,
    },
    optional={
        "key_hash": st.just("0" * 64) | odd_text,
        "created_at": st.floats(allow_nan=False) | st.integers(),
        "channels": st.lists(
            st.sampled_from([".", "..", "__consumer_offsets", "ok-topic", "posts", "a" * 250])
            | odd_text,
            max_size=3,
        )
        | odd_text,
        "keywords": st.lists(odd_text | st.text(min_size=101, max_size=120), max_size=5),
        "all": st.booleans() | json_values,
        "urls": st.lists(image_entries, max_size=3),
        "secret": odd_text | st.just("s" * 40),
    },
)


@BOUNDARY
@given(
    raw=st.one_of(_raw_records(), command_like.map(lambda v: json.dumps(v).encode())),
    existing=st.booleans(),
)
def test_a_control_command_applies_or_is_refused_with_a_reason(
    raw: bytes | None, existing: bool
) -> None:
    try:
        command = decode_with(raw, control_command_adapter, "control command")
    except RecordRefused:
        return
    current = (
        KeyRecord(key_id=command.key_id, key_hash="0" * 64, created_at=0, channels=("c",))
        if existing
        else None
    )
    try:
        record = apply_command(current, command)
        check_targets(SETTINGS, command)
    except (ControlError, KeywordError) as exc:
        assert str(exc)
        return
    # An applied command never leaves a channel Kafka would refuse.
    from models.keys import topic_name_problem

    if command.op in ("create_key", "set_channels"):
        assert all(topic_name_problem(name) is None for name in record.channels)
    record.model_dump_json().encode()


@pytest.mark.parametrize(
    ("channels", "refused"),
    [
        ([".."], "not a valid Kafka topic name"),
        (["."], "not a valid Kafka topic name"),
        (["__consumer_offsets"], "reserved"),
        (["has space"], "should match pattern"),
        (["x" * 250], "should match pattern"),
        ("my-topic", "valid array"),
    ],
)
def test_set_channels_commands_with_names_kafka_refuses_never_decode(
    channels: Any, refused: str
) -> None:
    raw = json.dumps({"op": "set_channels", "key_id": "abcdef123456", "channels": channels})
    with pytest.raises(RecordRefused, match=refused):
        decode_with(raw.encode(), control_command_adapter, "control command")


async def test_a_stop_mid_record_is_not_the_records_fault() -> None:
    """The worker stopping mid-send: raised (the record is read again), never dead-lettered."""
    import asyncio

    from app.pipeline.boundary import record_boundary

    class NoDeadLetters:
        async def send(self, *args: object) -> None:
            raise AssertionError("dead-lettered")

    with pytest.raises(asyncio.CancelledError):
        async with record_boundary(NoDeadLetters(), "ocr", object()):  # type: ignore[arg-type]
            raise asyncio.CancelledError


def test_the_workers_services_start_before_the_agents_and_stop_after_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mode starts dependencies in order and stops them in reverse: ours come first."""
    import faust

    from app.faust_app import OcrstreamApp

    fausts = ["sensors", "producer", "web", "consumer", "agents", "conductor", "tables"]
    monkeypatch.setattr(faust.App, "on_init_dependencies", lambda self: fausts)
    app = OcrstreamApp.__new__(OcrstreamApp)  # no loop, no transport: the order alone
    app.own_services = ("outbox", "dead letters")  # type: ignore[assignment]
    order: list[object] = list(app.on_init_dependencies())
    assert order == ["outbox", "dead letters", *fausts]


async def test_a_record_cut_short_by_the_stop_is_never_acked() -> None:
    """Faust acks in its iterator's finally; a batch the stop cut short must stay unacked."""
    import asyncio
    from types import SimpleNamespace

    from faust.types.tuples import Message

    from app.pipeline.unfinished import unacked_if_cut_short

    def event() -> Any:
        message = Message("posts", 0, 7, 0.0, 0, None, b"k", b"v", None)
        message.incref()  # the stream's reference, as Faust takes it on delivery
        return SimpleNamespace(message=message)

    consumer = SimpleNamespace()
    cut, failed, done = [event(), event()], [event()], [event()]
    with pytest.raises(asyncio.CancelledError):
        with unacked_if_cut_short(cut):
            raise asyncio.CancelledError
    with pytest.raises(ValueError):  # a bug: the agent crashes, and Faust's rules apply
        with unacked_if_cut_short(failed):
            raise ValueError("a bug")
    with unacked_if_cut_short(done):
        pass
    # Faust's cleanup then acks each event once.
    assert [e.message.ack(consumer) for e in cut] == [False, False]
    assert [e.message.ack(consumer) for e in failed + done] == [True, True]


async def test_a_batch_is_acknowledged_only_after_the_broker_has_its_dead_letters() -> None:
    """Letters reported inside a batch are written when it ends; the batch waits for them."""
    import asyncio
    from types import SimpleNamespace

    from faust.types.tuples import Message

    from app.kafka.outbox import Outbox, Outgoing
    from app.pipeline.boundary import batch_boundary, record_boundary
    from app.pipeline.dead_letters import DeadLetters

    class HeldOutbox(Outbox):
        """Acknowledges the letters when the test says so (there is no broker here)."""

        def __init__(self) -> None:
            super().__init__(SETTINGS)
            self.sent: list[Outgoing] = []
            self.ack = asyncio.Event()

        async def send_until_done(self, records: Any, timeout_s: float) -> list[Outgoing]:
            self.sent.extend(records)
            await self.ack.wait()
            return []

    def event(offset: int) -> Any:
        message = Message("posts", 0, offset, 0.0, 0, None, b"k", b"{}", None)
        return SimpleNamespace(message=message, value=b"not json")

    outbox = HeldOutbox()
    letters = DeadLetters(SETTINGS, outbox)
    events = [event(n) for n in range(3)]

    async def one_batch() -> None:
        async with batch_boundary(letters, events):
            for e in events:
                async with record_boundary(letters, "posts", e):
                    raise RecordRefused("bad")
            assert outbox.sent == []  # nothing yet: written together when the batch ends

    batch = asyncio.ensure_future(one_batch())
    await asyncio.sleep(0.05)
    assert not batch.done()  # held until the broker acknowledges the letters
    assert len(outbox.sent) == 3 and {r.topic for r in outbox.sent} == {"ocrstream-dead-letter"}
    outbox.ack.set()
    await asyncio.wait_for(batch, 1)

    # A batch the stop cuts short writes none of its letters: its records are read again.
    outbox.sent.clear()
    with pytest.raises(asyncio.CancelledError):
        async with batch_boundary(letters, [event(9)]):
            async with record_boundary(letters, "posts", events[0]):
                raise RecordRefused("bad")
            raise asyncio.CancelledError
    assert outbox.sent == []
