"""POST /ocr: OCR one image given by URL or inline, answered in the product's shape."""

from __future__ import annotations

import time

from aiohttp import web
from yarl import URL

from app.fetch import FetchError, FetchRefusedError, FetchTooLargeError, check_url
from app.metrics import metrics
from app.ocr.admission import OcrBusyError
from app.ocr.engine import OcrOutput
from app.ocr.images import BadDimensionsError, ImageTooLargeError, UnreadableImageError
from app.ocr.images import ImageError as DecodeError
from app.ocr.pool import OcrPoolError
from app.ocr.reading import reading_of
from app.ocr.runtime import OcrRuntime
from app.samples import local_sample
from app.settings import Settings
from app.web.auth import api_key_caller, retry_later
from app.web.context import OCR, SETTINGS
from app.web.errors import ApiError, read_model
from app.web.image_input import ImageInputError, ImageInputTooLargeError, decode_image_field
from models.api import OcrAnswer, OcrData, OcrLine, OcrRequest


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
            output, cached = await _read_url(
                runtime, body.imageUrl, caller.key_id, request.app[SETTINGS]
            )
        else:
            assert body.image is not None  # exactly one of the two (OcrRequest)
            data = _decode(body.image, max_image_bytes)
            output, cached = await runtime.ocr_image(data, caller.key_id)
    except OcrBusyError as exc:
        raise retry_later(503, str(exc), exc.retry_after_s, headers) from None
    except OcrPoolError as exc:
        raise retry_later(503, str(exc), 1, headers) from None
    except ImageTooLargeError as exc:
        raise ApiError(413, str(exc)) from None
    except (BadDimensionsError, UnreadableImageError) as exc:
        raise ApiError(422, f"the image cannot be read: {exc}") from None
    except DecodeError as exc:
        raise ApiError(415, f"not an image we can read: {exc}") from None
    metrics.ocr_requests.inc()
    total_ms = round((time.perf_counter() - started) * 1000, 1)
    # Why 0: an answer from the OCR cache (the same image read before) ran no OCR now.
    elapsed_ms = output.elapsed_ms if not cached else 0.0
    # The same reading as the pipeline's: the same bounds, the same QR codes.
    reading = reading_of(output)
    answer = OcrAnswer(
        data=OcrData(
            text=reading.text,
            lines=[OcrLine(text=text, score=score) for text, score in reading.lines],
            elapsed_ms=elapsed_ms,
            total_ms=total_ms,
            qr=reading.qr,
            truncated=reading.truncated,
        )
    )
    return web.json_response(answer.model_dump(), headers=headers)


def _decode(image: str, max_image_bytes: int) -> bytes:
    try:
        return decode_image_field(image, max_image_bytes)
    except ImageInputTooLargeError as exc:
        raise ApiError(413, str(exc)) from None
    except ImageInputError as exc:
        raise ApiError(400, str(exc)) from None


async def _read_url(
    runtime: OcrRuntime, image_url: str, caller: str, settings: Settings
) -> tuple[OcrOutput, bool]:
    if not image_url.startswith(("http://", "https://")):
        raise ApiError(400, "imageUrl must be an http(s) URL")
    try:
        # The worker's own /samples/ URL is read from the package, as the pipeline reads it.
        if local_sample(image_url, settings) is None:
            check_url(URL(image_url), runtime.fetch_limits)
    except FetchRefusedError as exc:
        raise ApiError(422, f"refused to fetch imageUrl: {exc}") from None
    except ValueError as exc:
        raise ApiError(400, f"imageUrl is not a valid URL: {exc}") from None
    try:
        return await runtime.ocr_url(image_url, caller)
    except FetchTooLargeError as exc:
        raise ApiError(413, str(exc)) from None
    except FetchRefusedError as exc:
        raise ApiError(422, f"refused to fetch imageUrl: {exc}") from None
    except FetchError as exc:
        raise ApiError(422, f"could not fetch imageUrl: {exc}") from None
