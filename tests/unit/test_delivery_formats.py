"""Discord, Slack and Telegram bodies: what each shows, within its limits, for any event."""

from __future__ import annotations

import html
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.dispatch.formats import (
    DISCORD_CONTENT_CHARS,
    DISCORD_DESCRIPTION_CHARS,
    DISCORD_EMBED_TOTAL_CHARS,
    DISCORD_EMBEDS,
    DISCORD_FIELD_VALUE_CHARS,
    DISCORD_TITLE_CHARS,
    SLACK_BLOCKS,
    SLACK_SECTION_CHARS,
    TELEGRAM_TEXT_CHARS,
    discord_body,
    slack_body,
    telegram_text,
)
from harness.standins import telegram_html_problem
from tests.strategies import json_values

ADDRESS = "0x6982508145454Ce325dDbE47a25d4ec3d2311933"
OCR_EVENT = {
    "source": "ocr_result",
    "image_url": "https://pbs.example/media/1.jpg",
    "text": "$PEPE presale <live> & LP burned",
    "ref": {"source": "x", "mid": "1", "sid": "2", "link": "https://x.com/a/status/1"},
    "buy_ca": [{"network": "evm", "address": ADDRESS}],
    "keyword_matches": ["pepe"],
}
POST_EVENT = {"source": "telegram", "mid": "9", "sid": "8", "link": "", "text": "gm", "images": []}

# Events as they come, and events no one should send: any JSON object, with the real fields
# often present and holding odd values, and texts far past every limit.
FIELDS = st.sampled_from(
    ["source", "text", "ref", "link", "image_url", "buy_ca", "keyword_matches", "network"]
)
EVENTS = st.one_of(
    st.dictionaries(FIELDS | st.text(max_size=5), json_values(FIELDS), max_size=8),
    st.builds(
        lambda text, words, n: {
            **OCR_EVENT,
            "text": text,
            "keyword_matches": words,
            "buy_ca": [{"network": "solana", "address": "&<>" * 30}] * n,
        },
        st.text(min_size=0, max_size=9000) | st.just("<&>" * 3000),
        st.lists(st.text(max_size=100), max_size=100),
        st.integers(0, 30),
    ),
)


def _discord_within_limits(body: dict[str, Any]) -> None:
    assert len(body["content"]) <= DISCORD_CONTENT_CHARS
    assert 1 <= len(body["embeds"]) <= DISCORD_EMBEDS
    assert body["allowed_mentions"] == {"parse": []}
    for embed in body["embeds"]:
        assert len(embed["title"]) <= DISCORD_TITLE_CHARS
        assert 1 <= len(embed["description"]) <= DISCORD_DESCRIPTION_CHARS
        assert all(
            1 <= len(f["value"]) <= DISCORD_FIELD_VALUE_CHARS for f in embed.get("fields", [])
        )
        total = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
        total += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
        assert total <= DISCORD_EMBED_TOTAL_CHARS
        for url in (embed.get("url"), embed.get("image", {}).get("url")):
            assert url is None or re.fullmatch(r"https?://\S+", url)


def _slack_within_limits(body: dict[str, Any]) -> None:
    assert body["text"] and len(body["blocks"]) <= SLACK_BLOCKS
    for block in body["blocks"]:
        assert block["type"] == "section" and 1 <= len(block["text"]["text"]) <= SLACK_SECTION_CHARS


def test_discord_shows_the_headline_text_image_addresses_and_keywords() -> None:
    body = discord_body(OCR_EVENT)
    _discord_within_limits(body)
    [embed] = body["embeds"]
    assert body["content"] == "Text in an image of an X post matching pepe"
    assert embed["description"] == OCR_EVENT["text"]
    assert embed["url"] == "https://x.com/a/status/1"
    assert embed["image"] == {"url": "https://pbs.example/media/1.jpg"}
    assert embed["fields"][0] == {"name": "Contract addresses", "value": f"`{ADDRESS}` (evm)"}
    assert embed["fields"][1] == {"name": "Keywords", "value": "pepe"}


def test_slack_escapes_its_three_control_characters_and_links_the_post() -> None:
    body = slack_body(OCR_EVENT)
    _slack_within_limits(body)
    texts = [block["text"]["text"] for block in body["blocks"]]
    assert texts[0] == "*<https://x.com/a/status/1|Text in an image of an X post matching pepe>*"
    assert texts[1] == "$PEPE presale &lt;live&gt; &amp; LP burned"
    assert (
        f"`{ADDRESS}` (evm)" in texts[2] and "<https://pbs.example/media/1.jpg|image>" in texts[2]
    )


def test_telegram_is_html_with_the_text_escaped() -> None:
    text = telegram_text(OCR_EVENT)
    assert text.startswith("<b>Text in an image of an X post matching pepe</b>\n")
    assert '<a href="https://x.com/a/status/1">X post</a>' in text
    assert "$PEPE presale &lt;live&gt; &amp; LP burned" in text
    assert f"<code>{ADDRESS}</code> (evm)" in text
    post = telegram_text(POST_EVENT)
    assert post == "<b>New Telegram post</b>\n\ngm"


@given(EVENTS)
def test_any_event_makes_bodies_within_every_services_limits(event: dict[str, Any]) -> None:
    _discord_within_limits(discord_body(event))
    _slack_within_limits(slack_body(event))
    message = telegram_text(event)
    assert 1 <= len(message) <= TELEGRAM_TEXT_CHARS
    # Every tag in it is one we wrote: the event's text cannot open or break markup.
    assert set(re.findall(r"</?([a-z]+)", message)) <= {"b", "a", "code"}
    assert html.unescape(re.sub(r"<[^>]+>", "", message))  # well-formed enough to unescape
    assert _telegram_parses(message)


def _telegram_parses(message: str) -> bool:
    """Tell whether Telegram's HTML parse mode takes the message (the Bot API stand-in's check)."""
    return telegram_html_problem(message) == ""


def test_a_link_too_long_for_telegram_is_left_out_never_cut() -> None:
    # A link of 2,048 characters, each "&" escaped to five: 10,000 characters of href alone.
    hostile = {**POST_EVENT, "source": "x", "link": "https://x.com/" + "&" * 2034, "text": "gm"}
    message = telegram_text(hostile)
    assert len(message) <= TELEGRAM_TEXT_CHARS and _telegram_parses(message)
    assert "href" not in message and message.endswith("gm")
    # An ordinary link is kept, whole.
    kept = telegram_text({**hostile, "link": "https://x.com/a/status/1"})
    assert '<a href="https://x.com/a/status/1">X post</a>' in kept and _telegram_parses(kept)


def test_a_bar_in_a_link_cannot_choose_the_label_slack_shows() -> None:
    ref = {"source": "x", "mid": "1", "sid": "2", "link": "https://x.com/a|VERIFY-YOUR-WALLET"}
    event: dict[str, Any] = {
        **OCR_EVENT,
        "ref": ref,
        "image_url": "https://pbs.example/1.jpg|CLAIM-AIRDROP",
    }
    texts = [block["text"]["text"] for block in slack_body(event)["blocks"]]
    assert texts[0] == (
        "*<https://x.com/a%7CVERIFY-YOUR-WALLET|Text in an image of an X post matching pepe>*"
    )
    assert "<https://pbs.example/1.jpg%7CCLAIM-AIRDROP|image>" in texts[-1]
    assert "|VERIFY" not in str(texts) and "|CLAIM" not in str(texts)
