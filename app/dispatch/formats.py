"""What a delivery looks like to Discord, Slack and Telegram: bodies within each one's limits.

Pure functions of a delivered event (a post, or an ``ocr_result``). An event is whatever a key
receives, so nothing here trusts its shape: a missing or odd field gives a shorter message,
never an exception. Text is cut before it is escaped, so an escape is never cut in half.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Discord's documented limits (developer docs, "Embed Limits" and "Execute Webhook").
DISCORD_CONTENT_CHARS = 2000
DISCORD_EMBEDS = 10
DISCORD_TITLE_CHARS = 256
DISCORD_DESCRIPTION_CHARS = 4096
DISCORD_FIELD_VALUE_CHARS = 1024
DISCORD_EMBED_TOTAL_CHARS = 6000
# Slack's: a section's text, and the blocks of one message.
SLACK_SECTION_CHARS = 3000
SLACK_BLOCKS = 50
# Telegram's sendMessage: 1-4096 characters of text.
TELEGRAM_TEXT_CHARS = 4096

_SOURCES = {"x": "X", "telegram": "Telegram", "discord": "Discord"}
# Why a bound on addresses: a post listing hundreds must still make one readable message.
_MAX_ADDRESSES = 10


@dataclass(frozen=True)
class Summary:
    """What every format shows of an event, read defensively from its JSON."""

    kind: str  # "post", "ocr_result", or the event's own source word
    source: str  # where the post was made: "X", "Telegram", ...
    link: str  # the post's link when it is http(s), else ""
    text: str  # the post's text, or the text read from its image
    image_url: str  # the image read ("" for a post)
    addresses: tuple[tuple[str, str], ...]  # (network, address)
    keywords: tuple[str, ...]


def summarize(event: dict[str, Any]) -> Summary:
    """Return the parts of a delivered event that the formats show."""
    is_ocr = event.get("source") == "ocr_result"
    ref = event.get("ref") if is_ocr else event
    ref = ref if isinstance(ref, dict) else {}
    source = _text(ref.get("source"))
    addresses = tuple(
        (_text(item.get("network")), _text(item.get("address")))
        for item in _list(event.get("buy_ca"))
        if isinstance(item, dict) and _text(item.get("address"))
    )
    return Summary(
        kind="ocr_result" if is_ocr else ("post" if source in _SOURCES else source or "event"),
        source=_SOURCES.get(source, source or "unknown source"),
        link=_http_url(ref.get("link")),
        text=_text(event.get("text")),
        image_url=_http_url(event.get("image_url")) if is_ocr else "",
        addresses=addresses[:_MAX_ADDRESSES],
        keywords=tuple(_text(k) for k in _list(event.get("keyword_matches")) if _text(k)),
    )


def headline(summary: Summary) -> str:
    """Return one line saying what happened: "New X post", "Text in an image of a ... post"."""
    if summary.kind == "ocr_result":
        article = "an" if summary.source[:1] in "AEIOUX" else "a"
        line = f"Text in an image of {article} {summary.source} post"
    else:
        line = f"New {summary.source} post"
    if summary.keywords:
        line += " matching " + ", ".join(summary.keywords)
    return line


def discord_body(event: dict[str, Any]) -> dict[str, Any]:
    """Return a Discord incoming-webhook body: a one-line ``content`` and one embed."""
    summary = summarize(event)
    embed: dict[str, Any] = {
        "title": _cut(headline(summary), DISCORD_TITLE_CHARS),
        "description": _cut(summary.text, DISCORD_DESCRIPTION_CHARS) or "(no text)",
        "footer": {"text": "ocrstream"},
    }
    if summary.link:
        embed["url"] = summary.link
    if summary.image_url:
        embed["image"] = {"url": summary.image_url}
    fields = []
    if summary.addresses:
        listed = "\n".join(f"`{address}` ({network})" for network, address in summary.addresses)
        fields.append({"name": "Contract addresses", "value": listed})
    if summary.keywords:
        fields.append({"name": "Keywords", "value": ", ".join(summary.keywords)})
    if fields:
        embed["fields"] = [
            {**field, "value": _cut(field["value"], DISCORD_FIELD_VALUE_CHARS)} for field in fields
        ]
    _fit_embed(embed)
    return {
        "content": _cut(headline(summary), DISCORD_CONTENT_CHARS),
        "embeds": [embed],
        # Why: a post's text must never ping @everyone or a role in the receiving server.
        "allowed_mentions": {"parse": []},
    }


def slack_body(event: dict[str, Any]) -> dict[str, Any]:
    """Return a Slack incoming-webhook body: ``text`` (notifications) and ``blocks``."""
    summary = summarize(event)
    title = _slack_escape(headline(summary))
    if summary.link:
        title = f"<{_slack_url(summary.link)}|{title}>"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}},
    ]
    if summary.text:
        quoted = _escaped_within(summary.text, SLACK_SECTION_CHARS, _slack_escape)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": quoted}})
    details = [
        f"`{_slack_escape(address)}` ({_slack_escape(network)})"
        for network, address in summary.addresses
    ]
    if summary.image_url:
        details.append(f"<{_slack_url(summary.image_url)}|image>")
    if details:
        text = "\n".join(details)[:SLACK_SECTION_CHARS]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    return {"text": _slack_escape(headline(summary)), "blocks": blocks[:SLACK_BLOCKS]}


def telegram_text(event: dict[str, Any]) -> str:
    """Return a Telegram message in its HTML parse mode, at most 4096 characters.

    The budget is the message as sent, markup included (Telegram counts less: only what the
    chat shows). What does not fit is left out whole (a link, an address) or cut from the
    text, never from the markup: a message cut inside a tag (a long link's ``href``) is
    refused with 400 and never arrives.
    """
    summary = summarize(event)
    room = TELEGRAM_TEXT_CHARS
    # Why a quarter: a headline of a hundred keywords must leave room for the post's text.
    head = f"<b>{_escaped_within(headline(summary), room // 4 - 7, html.escape)}</b>"
    # Why a third for the link, addresses and image: the post's text is what it is for.
    extras_room = (room - len(head)) // 3
    link = ""
    if summary.link:
        label = html.escape(f"{summary.source} post")
        link = f'\n<a href="{html.escape(summary.link)}">{label}</a>'
        if len(link) > extras_room:
            link = ""  # left out whole: a hostile link of 2,048 escaped characters
    extras = [
        f"\n<code>{html.escape(address)}</code> ({html.escape(network)})"
        for network, address in summary.addresses
    ]
    if summary.image_url:
        extras.append(f'\n<a href="{html.escape(summary.image_url)}">image</a>')
    tail = "".join(_whole_pieces_within(extras, extras_room - len(link)))
    body = _escaped_within(summary.text, room - len(head) - len(link) - len(tail) - 2, html.escape)
    return head + link + (f"\n\n{body}" if body else "") + tail


def _whole_pieces_within(pieces: list[str], room: int) -> list[str]:
    """Return the pieces, in order, that fit in ``room`` together; one that does not is left
    out whole (never cut: each is markup)."""
    kept = []
    for piece in pieces:
        if len(piece) <= room:
            kept.append(piece)
            room -= len(piece)
    return kept


def _escaped_within(text: str, room: int, escape: Callable[[str], str]) -> str:
    """Return ``text`` escaped, cut so the escaped form has at most ``room`` characters."""
    parts: list[str] = []
    used = 0
    for char in text[:room]:  # each character escapes to at least one
        escaped = escape(char)
        if used + len(escaped) > room:
            break
        parts.append(escaped)
        used += len(escaped)
    return "".join(parts)


def _fit_embed(embed: dict[str, Any]) -> None:
    """Shorten the description so the embed's text stays within Discord's 6,000 in total."""
    total = (
        len(embed["title"])
        + len(embed["description"])
        + len(embed["footer"]["text"])
        + sum(len(field["name"]) + len(field["value"]) for field in embed.get("fields", []))
    )
    if total > DISCORD_EMBED_TOTAL_CHARS:
        keep = max(1, len(embed["description"]) - (total - DISCORD_EMBED_TOTAL_CHARS))
        embed["description"] = _cut(embed["description"], keep)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn has three control characters; everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_url(url: str) -> str:
    """Return a URL for Slack's ``<url|label>``: percent-encoded where Slack would read syntax.

    Why: a ``|`` in the URL ends it, and the rest becomes the link's label
    (``<https://x.com/a|VERIFY-YOUR-WALLET...>``): a post could pick the words a chat sees.
    """
    return url.replace("&", "&amp;").replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _http_url(value: Any) -> str:
    url = _text(value)
    # Why only http(s), no spaces: Discord refuses an embed whose url is anything else.
    ok = url.startswith(("http://", "https://")) and len(url) <= 2000 and " " not in url
    return url if ok else ""
