"""One caller, one host, one channel or one URL cannot hold up or expose the others."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mode.utils.logging import ExtensionFormatter

from app.fetch import FetchTimeoutError, HostSlots
from app.log_throttle import LogThrottle
from app.ocr.admission import OcrAdmission, OcrBusyError
from app.pipeline.channels import ChannelHealth
from app.redact import install_log_redaction, redact_text, redact_url


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:S3cret@host/a.png?token=abc", "http://***@host/a.png?token=***"),
        ("https://cdn/x.jpg?sig=1&exp=2", "https://cdn/x.jpg?sig=***&exp=***"),
        ("https://cdn/x.jpg?opaque", "https://cdn/x.jpg?***"),
        ("https://h/p#access_token=zz", "https://h/p#***"),
        ("https://pbs.twimg.com/media/a.jpg", "https://pbs.twimg.com/media/a.jpg"),
        ("http://[::1/a", "http://***"),
    ],
)
def test_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert redact_url(url) == shown


secret = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789", min_size=8)


@settings(max_examples=300)
@given(
    user=secret,
    password=secret,
    value=secret,
    host=st.sampled_from(["h.example", "127.0.0.1", "[::1]"]),
    junk=st.text(alphabet=" \t,;()éü—", max_size=20),
)
def test_no_secret_survives_redaction(
    user: str, password: str, value: str, host: str, junk: str
) -> None:
    url = f"https://{user}:{password}@{host}/a.png?token={value}&x=1#{value}"
    for text in (url, f"{junk} {url} {junk}"):
        shown = redact_text(text)
        assert password not in shown and value not in shown


# --- channels ----------------------------------------------------------------------------------


def test_a_failed_channel_is_refused_fast_until_its_pause_is_over() -> None:
    clock = Clock()
    health = ChannelHealth(retry_after_s=30, clock=clock)
    assert health.refusal("good") is None and health.refusal("stuck") is None
    assert health.failed("stuck", "not acknowledged within 5 s") == (
        "channel stuck unavailable: not acknowledged within 5 s"
    )
    assert health.refusal("stuck") == "channel stuck unavailable: not acknowledged within 5 s"
    assert health.refusal("good") is None  # the others go on
    assert health.unavailable() == {"stuck": "not acknowledged within 5 s"}
    clock.now += 31  # after the pause it is tried again
    assert health.refusal("stuck") is None
    health.delivered("stuck")
    assert health.unavailable() == {}


def test_a_channel_the_cluster_failed_is_held_for_the_retry_lanes_not_refused() -> None:
    clock = Clock()
    health = ChannelHealth(retry_after_s=30, clock=clock)
    health.failed("moving", "not acknowledged within 5 s", transient=True)
    assert health.refusal("moving") is None  # nothing dead-lettered for a leader moving
    assert health.held("moving") and not health.held("good")
    assert health.unavailable() == {"moving": "not acknowledged within 5 s"}
    clock.now += 31  # after the pause it is sent to directly again
    assert not health.held("moving") and health.refusal("moving") is None


@pytest.mark.parametrize("name", ["..", ".", "__consumer_offsets", "a b", "x" * 250, ""])
def test_names_kafka_refuses_are_never_sent(name: str) -> None:
    refused = ChannelHealth(retry_after_s=1).refusal(name)
    assert refused is not None and refused.startswith("channel refused")


# --- OCR admission -----------------------------------------------------------------------------


async def test_ocr_http_gets_its_share_and_the_pipeline_the_rest() -> None:
    admission = OcrAdmission(slots=1, http_queue=100, http_share=0.5)
    order: list[str] = []
    gate = asyncio.Event()

    async def run(lane: Any, name: str) -> None:
        async with admission.slot(lane):
            order.append(name)
            await gate.wait()

    first = asyncio.ensure_future(run("pipeline", "p0"))
    await asyncio.sleep(0)
    waiting = [asyncio.ensure_future(run("http", f"h{i}")) for i in range(4)]
    waiting += [asyncio.ensure_future(run("pipeline", f"p{i}")) for i in range(1, 5)]
    await asyncio.sleep(0)
    assert admission.status() == {
        "slots": 1,
        "in_use": 1,
        "waiting_pipeline": 4,
        "waiting_http": 4,
    }
    gate.set()
    await asyncio.gather(first, *waiting)
    # Alternating turns while both wait: /ocr cannot starve the pipeline, nor the reverse.
    assert order == ["p0", "p1", "h0", "p2", "h1", "p3", "h2", "p4", "h3"]


async def test_ocr_http_queue_is_bounded_and_says_when_to_retry() -> None:
    admission = OcrAdmission(slots=1, http_queue=2, http_share=0.5)
    gate = asyncio.Event()

    async def hold(lane: Any) -> None:
        async with admission.slot(lane):
            await gate.wait()

    held = [asyncio.ensure_future(hold("http")) for _ in range(3)]  # 1 running, 2 waiting
    await asyncio.sleep(0)
    with pytest.raises(OcrBusyError) as busy:
        admission.check_room("http")
    assert busy.value.retry_after_s >= 1
    admission.check_room("pipeline")  # the pipeline's own queue is bounded by its agent
    gate.set()
    await asyncio.gather(*held)
    assert admission.status()["in_use"] == 0


async def test_a_caller_that_gives_up_while_waiting_frees_its_turn() -> None:
    admission = OcrAdmission(slots=1, http_queue=5, http_share=0.5)
    gate = asyncio.Event()

    async def hold(lane: Any) -> None:
        async with admission.slot(lane):
            await gate.wait()

    running = asyncio.ensure_future(hold("pipeline"))
    await asyncio.sleep(0)
    quitter = asyncio.ensure_future(hold("http"))
    await asyncio.sleep(0)
    quitter.cancel()
    gate.set()
    await running
    with pytest.raises(asyncio.CancelledError):
        await quitter
    async with admission.slot("http"):
        assert admission.status()["in_use"] == 1
    assert admission.status() == {
        "slots": 1,
        "in_use": 0,
        "waiting_pipeline": 0,
        "waiting_http": 0,
    }


# --- downloads per host ------------------------------------------------------------------------


async def test_a_slow_host_holds_only_its_own_download_slots() -> None:
    hosts = HostSlots(per_host=2, wait_s=0.1)
    gate = asyncio.Event()

    async def download(host: str) -> str:
        async with hosts.hold(host):
            if host == "slow.example":
                await gate.wait()
            return host

    slow = [asyncio.ensure_future(download("slow.example")) for _ in range(2)]
    await asyncio.sleep(0)
    assert await download("fast.example") == "fast.example"  # not held up
    with pytest.raises(FetchTimeoutError, match="2 downloads from slow.example"):
        await download("slow.example")  # a third waits at most wait_s
    assert hosts.busy() == {"slow.example": 2}
    gate.set()
    await asyncio.gather(*slow)
    assert hosts.busy() == {}  # nothing kept for hosts with nothing under way


def test_repeated_log_lines_are_held_back_and_counted() -> None:
    clock = Clock()
    throttle = LogThrottle(10, clock)
    assert throttle.allow("filter:channel x") == 0
    assert throttle.allow("filter:channel x") is None
    assert throttle.allow("filter:channel x") is None
    assert throttle.allow("posts:other") == 0
    clock.now += 11
    assert throttle.allow("filter:channel x") == 2


def test_log_lines_and_tracebacks_never_carry_url_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_redaction()
    install_log_redaction()  # twice is once
    log = logging.getLogger("ocrstream.test")
    try:
        raise ValueError("fetching https://u:hunter2@cdn.example/a.png?sig=s3cr3t failed")
    except ValueError:
        log.exception("could not read %s", "http://bob:pw123@h.example/b.png?token=t0k")
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    for secret in ("hunter2", "s3cr3t", "pw123", "t0k"):
        assert secret not in text
    assert "https://***@cdn.example/a.png?sig=***" in text


def test_redacted_lines_still_format_under_the_workers_formatter() -> None:
    # The worker logs through mode's formatter, which re-reads a record's arguments: a
    # redacted record must leave none behind (the first version left None, and every
    # redacted line became a "Logging error" with the traceback of the image's failure).
    install_log_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ExtensionFormatter(stream=stream, fmt="%(message)s"))
    log = logging.getLogger("ocrstream.test.mode")
    log.addHandler(handler)
    try:
        log.warning("image not read (%s): %s", "timeout", "http://a:pw9@h.example/x.png")
    finally:
        log.removeHandler(handler)
    assert stream.getvalue().strip() == "image not read (timeout): http://***@h.example/x.png"
