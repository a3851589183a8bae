"""Hide what a URL may carry in secret before it is shown or logged. Pure.

A post's image URL can hold credentials (``https://user:pass@host/...``) or signed query
values (``?token=...``). The URL itself travels unchanged in the events a key receives; the
status page, the log and error counters only ever get the redacted form.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any
from urllib.parse import urlsplit

HIDDEN = "***"
# A scheme, "://", then anything up to whitespace or a quote: what counts as a URL in text.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,20}://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """Return ``url`` with its user info, query values and fragment replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed "[" in the host: keep only what cannot be secret
        return url.split("://", 1)[0] + "://" + HIDDEN if "://" in url else HIDDEN
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{HIDDEN}@{netloc.rsplit('@', 1)[1]}"
    shown = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else f"{netloc}{parts.path}"
    if parts.query:
        shown += "?" + _hide_values(parts.query)
    if parts.fragment:
        shown += "#" + HIDDEN
    return shown


def _hide_values(query: str) -> str:
    # Why keep the names: "?token=***" still tells an operator what kind of URL it was.
    return "&".join(
        f"{pair.split('=', 1)[0]}={HIDDEN}" if "=" in pair else HIDDEN for pair in query.split("&")
    )


def redact_text(text: str) -> str:
    """Return ``text`` with every URL in it redacted (for reasons shown or logged)."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def install_log_redaction() -> None:
    """Redact the URLs in every log record this process writes, tracebacks included.

    Why a record factory: our own log calls redact what they show, but a library's message or
    an exception's text (aiohttp puts the URL in some) would still carry secrets into the log.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_urls", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is logging's own error to report
            return record
        if "://" in message:
            record.msg, record.args = redact_text(message), ()
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            if "://" in text:
                record.exc_text = redact_text(text)
        return record

    factory.redacts_urls = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
