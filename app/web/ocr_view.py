"""POST /ocr: OCR one image given by URL or inline, answered in the product's shape."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web
from yarl import URL

from app.fetch import FetchError, FetchRefusedError, FetchTooLargeError
from app.metrics import metrics
from app.ocr.admission import OcrBusyError
from app.ocr.engine import OcrOutput
from app.ocr.images import BadDimensionsError, ImageTooLargeError, UnreadableImageError
from app.ocr.images import ImageError as DecodeError
from app.ocr.pool import OcrPoolError
from app.ocr.reading import reading_of
from app.web.auth import api_key_caller, retry_later
from app.web.context import OCR, SETTINGS
from app.web.errors import ApiError, read_model
from app.web.image_input import ImageInputError, ImageInputTooLargeError, decode_image_field
from models.api import OcrAnswer, OcrData, OcrLine, OcrRequest

# What each failure answers: the status, and the message around the failure's own words. The
# first class the failure is an instance of wins, so a subclass comes before its base.
_ANSWERS: tuple[tuple[type[Exception], int, str], ...] = (
    (ImageInputTooLargeError, 413, "{}"),
    (ImageInputError, 400, "{}"),
    (FetchTooLargeError, 413, "{}"),
    (FetchRefusedError, 422, "refused to fetch imageUrl: {}"),
    (FetchError, 422, "could not fetch imageUrl: {}"),
    (ImageTooLargeError, 413, "{}"),
    (BadDimensionsError, 422, "the image cannot be read: {}"),
    (UnreadableImageError, 422, "the image cannot be read: {}"),
    (DecodeError, 415, "not an image we can read: {}"),
)
# Failures that pass: 503 with how long to wait before trying again.
_RETRY_AFTER_S: dict[type[Exception], Callable[[Exception], float]] = {
    OcrBusyError: lambda exc: getattr(exc, "retry_after_s", 1.0),
    OcrPoolError: lambda _: 1.0,
}


def max_body_bytes(max_image_bytes: int) -> int:
    """Return the largest body /ocr reads: an image in base64 and the JSON around it."""
    # Why: base64 carries 4 bytes per 3, plus room for a data-URI prefix and JSON around it.
    return max_image_bytes * 4 // 3 + 64 * 1024


async def ocr_handler(request: web.Request) -> web.Response:
    """OCR the image in ``imageUrl`` or ``image`` and return its text lines with timings."""
    started = time.perf_counter()
    caller, headers = api_key_caller(request)
    max_image_bytes = request.app[SETTINGS].max_image_bytes
    body = await read_model(request, OcrRequest, max_body_bytes(max_image_bytes))
    runtime = request.app[OCR]
    try:
        runtime.admission.check_room("http")
        # Through the caller's own cache: an image it sent minutes ago is not read again.
        if body.imageUrl is not None:
            # The download checks the address (and each redirect's); the worker's own
            # /samples/ URL is read from the package, as the pipeline reads it.
            url = image_url(body.imageUrl)
            output, cached = await runtime.ocr_url(url, caller.key_id)
        else:
            assert body.image is not None  # exactly one of the two (OcrRequest)
            data = decode_image_field(body.image, max_image_bytes)
            output, cached = await runtime.ocr_image(data, caller.key_id)
    except Exception as exc:
        raise answer_for(exc, headers) from None
    metrics.ocr_requests.inc()
    return web.json_response(_answer(output, cached, started).model_dump(), headers=headers)


def image_url(text: str) -> str:
    """Return ``imageUrl`` if it is an http(s) URL; else the 400 that says what it is not."""
    try:
        url = URL(text)
    except ValueError as exc:
        raise ApiError(400, f"imageUrl is not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ApiError(400, "imageUrl must be an http(s) URL")
    return text


def answer_for(exc: Exception, headers: dict[str, str]) -> Exception:
    """Return the answer a failure of /ocr gets (``_ANSWERS``), or the failure itself."""
    if isinstance(exc, ApiError):
        return exc
    for kind, retry_after in _RETRY_AFTER_S.items():
        if isinstance(exc, kind):
            return retry_later(503, str(exc), retry_after(exc), headers)
    for kind, status, message in _ANSWERS:
        if isinstance(exc, kind):
            return ApiError(status, message.format(exc))
    return exc  # a bug: the request's error boundary answers 500 and logs it


def _answer(output: OcrOutput, cached: bool, started: float) -> OcrAnswer:
    """Return the answer of a read: the same reading as the pipeline's (bounds, QR codes)."""
    reading = reading_of(output)
    return OcrAnswer(
        data=OcrData(
            text=reading.text,
            lines=[OcrLine(text=text, score=score) for text, score in reading.lines],
            # Why 0: an answer from the OCR cache (the same image read before) ran no OCR now.
            elapsed_ms=output.elapsed_ms if not cached else 0.0,
            total_ms=round((time.perf_counter() - started) * 1000, 1),
            qr=reading.qr,
            truncated=reading.truncated,
        )
    )
