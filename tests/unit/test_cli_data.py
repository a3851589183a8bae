"""The pure parts of ``ocrstream post`` and ``tail``, the bundled samples, the start-up log."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from app.cli.data import read_posts, with_defaults
from app.cli.tail import event_line
from app.kafka.first_start_log import CoordinatorStartupFilter
from app.kafka.reconnect_log import ReconnectLogThrottle
from app.samples import NAMES, local_sample, sample_bytes, sample_url
from app.settings import Settings

NOW = datetime(2026, 11, 30, 10, 0, 1, tzinfo=UTC)


def test_a_post_gets_sensible_defaults_and_keeps_what_it_has() -> None:
    post = with_defaults({"text": "gm"}, now=NOW)
    assert post["source"] == "x" and post["sid"] == "ocrstream-cli" and post["images"] == []
    assert post["link"] == f"https://x.com/ocrstream-cli/status/{post['mid']}"
    assert post["timestamp"] == "2026-11-30T10:00:01+00:00"
    given_fields = {"source": "telegram", "mid": "7", "sid": "chan", "text": "t", "images": []}
    assert with_defaults(given_fields, now=NOW) == given_fields | {"timestamp": NOW.isoformat()}


def test_each_refused_line_says_its_number_and_why() -> None:
    lines = io.StringIO(
        "\n".join(
            [
                '{"text": "fine", "images": ["https://example.com/a.png"]}',
                "# a comment",
                "",
                "not json",
                "[1, 2]",
                '{"source": "myspace", "text": "x"}',
                '{"text": "' + "a" * 5000 + '"}',
                '{"mid": "9", "text": "also fine"}',
            ]
        )
    )
    out = list(read_posts(lines, max_text_chars=4000))
    refused = {number: why for number, why, _ in out if isinstance(why, str)}
    sent = [json.loads(raw) for _, raw, _ in out if isinstance(raw, bytes)]
    assert [post["text"] for post in sent] == ["fine", "also fine"] and sent[1]["mid"] == "9"
    assert sorted(refused) == [4, 5, 6, 7]
    assert refused[4].startswith("not JSON")
    assert refused[5] == "not a JSON object but list"
    assert "source" in refused[6]
    assert "over the 4,000 limit" in refused[7]


def test_an_event_line_shows_time_post_addresses_keywords_and_text() -> None:
    event = {
        "source": "ocr_result",
        "text": "$PEPE presale live\nCA: 0xabc",
        "ref": {"source": "x", "mid": "17"},
        "buy_ca": [{"network": "evm", "address": "0xabc"}],
        "keyword_matches": ["pepe"],
    }
    line = event_line(int(NOW.timestamp() * 1000), json.dumps(event).encode(), as_json=False)
    assert line == (
        "10:00:01  ocr_result   x:17  CA evm:0xabc  keywords pepe  $PEPE presale live ⏎ CA: 0xabc"
    )
    error = {"source": "ocr_error", "error": "timeout", "reason": "slow", "ref": {"mid": "1"}}
    assert event_line(0, json.dumps(error).encode(), False).endswith("timeout: slow")
    assert event_line(0, b'{"a": 1}', as_json=True) == '{"a": 1}'
    assert event_line(0, None, False) == "(null record)"


def test_a_dead_letter_line_names_its_post_or_where_its_record_was() -> None:
    # Before: "dead_letter:?" in the post column.
    post = json.dumps({"source": "x", "mid": "9", "text": "gm"})
    job = json.dumps({"image_url": "https://a/b.png", "ref": {"source": "telegram", "mid": 7}})
    letters: list[tuple[dict[str, object], str]] = [
        ({"record": post}, "x:9"),
        ({"record": job}, "telegram:7"),
        ({"record": post[:10], "topic": "posts", "partition": 2, "offset": 41}, "posts[2]@41"),
        ({"record": "", "topic": "posts"}, "posts"),
    ]
    for fields, column in letters:
        letter = {"source": "dead_letter", "stage": "posts", "reason": "bad", **fields}
        line = event_line(0, json.dumps(letter).encode(), as_json=False)
        assert line.split("  ")[2] == column, line
        assert line.endswith("posts: bad")


@given(st.binary(max_size=300) | st.builds(lambda v: json.dumps(v).encode(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["source", "ref", "buy_ca", "keyword_matches", "text", "mid"]), inner,
        max_size=5),
    max_leaves=12,
)))  # fmt: skip
def test_any_record_on_a_topic_prints_as_one_line_without_failing(value: bytes) -> None:
    line = event_line(0, value, as_json=False)
    assert isinstance(line, str)


def test_samples_are_read_from_the_package_only_at_the_workers_own_url() -> None:
    on = Settings(serve_samples=True, web_port=6100)
    assert set(NAMES) == {"pepe.png", "bonk.jpg"}
    pepe = sample_bytes("pepe.png")
    assert pepe is not None and pepe.startswith(b"\x89PNG")
    assert local_sample(sample_url(on, "pepe.png"), on) == pepe
    assert local_sample("http://localhost:6100/samples/bonk.jpg", on) == sample_bytes("bonk.jpg")
    for url in [
        "http://127.0.0.1:6101/samples/pepe.png",  # another port: another server
        "http://10.0.0.1:6100/samples/pepe.png",
        "https://127.0.0.1:6100/samples/pepe.png",
        "http://127.0.0.1:6100/samples/../settings.py",
        "http://127.0.0.1:6100/samples/nope.png",
        "http://127.0.0.1:6100/dashboard",
        "not a url at all",
    ]:
        assert local_sample(url, on) is None, url
    off = Settings(serve_samples=False, web_port=6100)
    assert local_sample(sample_url(off, "pepe.png"), off) is None


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(
        "aiokafka.consumer.group_coordinator", logging.ERROR, __file__, 1, message, args, None
    )


def test_the_first_start_coordinator_error_becomes_one_explained_info_line() -> None:
    error = "[Error 15] CoordinatorNotAvailableError"
    during = CoordinatorStartupFilter(grace_s=60)
    first = _record("Group Coordinator Request failed: %s", error)
    assert during.filter(first) and first.levelno == logging.INFO
    assert "fresh broker" in first.getMessage() and first.levelname == "INFO"
    assert not during.filter(_record("Group Coordinator Request failed: %s", error))
    other = _record("Group Coordinator Request failed: %s", "[Error 7] RequestTimedOutError")
    assert during.filter(other) and other.levelno == logging.ERROR
    later = CoordinatorStartupFilter(grace_s=-1)  # past the grace period: a real fault
    late = _record("Group Coordinator Request failed: %s", error)
    assert later.filter(late) and late.levelno == logging.ERROR


def test_reconnect_errors_to_a_dead_broker_are_one_line_per_broker_per_interval() -> None:
    now = [0.0]
    throttle = ReconnectLogThrottle(every_s=10, clock=lambda: now[0])

    def attempt(node: int) -> logging.LogRecord:
        return logging.LogRecord(
            "aiokafka.client", logging.ERROR, __file__, 1,
            "Unable connect to node with id %s: %s", (node, "[Errno 111] refused"), None,
        )  # fmt: skip

    passed = [throttle.filter(attempt(1)) for _ in range(30)]
    assert passed.count(True) == 1  # thirty attempts within the interval: one line
    assert throttle.filter(attempt(2))  # another broker has a line of its own
    other = _record("Group Coordinator Request failed: %s", "x")
    assert throttle.filter(other)  # anything else goes through untouched
    now[0] = 11.0
    shown = attempt(1)
    assert throttle.filter(shown)
    assert shown.getMessage() == (
        "Unable connect to node with id 1: [Errno 111] refused (and 29 more like it in the last "
        "10 s)"
    )


def test_a_telegram_or_discord_line_gets_its_link_or_is_refused_saying_why() -> None:
    # Before: their link was "", and their Telegram messages had none.
    lines = io.StringIO(
        "\n".join(
            [
                '{"source": "telegram", "sid": "durov", "mid": "42", "text": "gm"}',
                '{"source": "telegram", "sid": "-1001234", "mid": "42", "text": "gm"}',
                '{"source": "discord", "sid": "55", "mid": "66", "text": "gm"}',
                '{"source": "discord", "sid": "55", "mid": "66", "text": "gm", '
                '"link": "https://discord.com/channels/1/55/66"}',
            ]
        )
    )
    out = {number: why for number, why, _ in read_posts(lines, max_text_chars=4000)}
    assert isinstance(out[1], bytes) and json.loads(out[1])["link"] == "https://t.me/durov/42"
    assert isinstance(out[2], str) and "telegram post needs its link" in out[2]
    assert isinstance(out[3], str) and "https://discord.com/channels/GUILD" in out[3]
    assert isinstance(out[4], bytes)


def test_a_line_that_is_not_json_is_explained_in_a_users_words() -> None:
    # Before: "Invalid control character at: line 1 column 62" for an unclosed string.
    lines = io.StringIO('{"text": "gm, an unclosed string}\n{"text": "a\tb"}\nhello\n')
    out = [why for _, why, _ in read_posts(lines, max_text_chars=4000)]
    assert out[0] == "not JSON: a string is not closed before the end of the line (column 34)"
    assert isinstance(out[1], str) and "raw tab" in out[1] and "\\t" in out[1]
    assert out[2] == "not JSON: each line must be one JSON object, {...}"
