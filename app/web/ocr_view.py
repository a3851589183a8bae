"""POST /ocr: OCR one image given by URL or inline, answered in the product's shape."""

from __future__ import annotations

import time

from aiohttp import web

from app.faust_app import settings
from app.fetch import FetchError, FetchRefusedError, FetchTooLargeError, check_url
from app.metrics import metrics
from app.ocr.admission import OcrBusyError
from app.ocr.images import BadDimensionsError, ImageTooLargeError, UnreadableImageError
from app.ocr.images import ImageError as DecodeError
from app.ocr.pool import OcrPoolError
from app.ocr_runtime import fetch_limits, runtime
from app.web.auth import api_key_caller, retry_later
from app.web.errors import ApiError, read_model
from app.web.image_input import ImageInputError, ImageInputTooLargeError, decode_image_field
from models.api import OcrRequest

# Why: base64 carries 4 bytes per 3, plus room for a data-URI prefix and JSON around it.
MAX_BODY_BYTES = settings.max_image_bytes * 4 // 3 + 64 * 1024


async def ocr_handler(request: web.Request) -> web.Response:
    """OCR the image in ``imageUrl`` or ``image`` and return its text lines with timings."""
    started = time.perf_counter()
    _, headers = api_key_caller(request)
    body = await read_model(request, OcrRequest, MAX_BODY_BYTES)
    try:
        runtime.admission.check_room("http")
        data = await _image_bytes(body)
        output = await runtime.ocr(data, lane="http")
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
    metrics.count("http_ocr_ok")
    total_ms = round((time.perf_counter() - started) * 1000, 1)
    return web.json_response(
        {
            "data": {
                "text": output.text,
                "lines": [{"text": text, "score": score} for text, score in output.lines],
                "elapsed_ms": output.elapsed_ms,
                "total_ms": total_ms,
            },
            "message": "Text extracted successfully",
        },
        headers=headers,
    )


async def _image_bytes(body: OcrRequest) -> bytes:
    if body.imageUrl is not None:
        return await _fetch(body.imageUrl)
    assert body.image is not None  # exactly one of the two (OcrRequest)
    try:
        return decode_image_field(body.image, settings.max_image_bytes)
    except ImageInputTooLargeError as exc:
        raise ApiError(413, str(exc)) from None
    except ImageInputError as exc:
        raise ApiError(400, str(exc)) from None


async def _fetch(image_url: str) -> bytes:
    if not image_url.startswith(("http://", "https://")):
        raise ApiError(400, "imageUrl must be an http(s) URL")
    try:
        from yarl import URL

        check_url(URL(image_url), fetch_limits)
        return await runtime.fetch(image_url)
    except FetchTooLargeError as exc:
        raise ApiError(413, str(exc)) from None
    except FetchRefusedError as exc:
        raise ApiError(422, f"refused to fetch imageUrl: {exc}") from None
    except FetchError as exc:
        raise ApiError(422, f"could not fetch imageUrl: {exc}") from None
    except ValueError as exc:
        raise ApiError(400, f"imageUrl is not a valid URL: {exc}") from None
