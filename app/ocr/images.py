"""Turn untrusted image bytes into an RGB array the OCR engine reads correctly."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from models.events import ErrorKind

# Why: decode_image checks the pixel count itself, from the header, with a clearer message and
# a limit from settings; Pillow's global check would pre-empt it with its own.
Image.MAX_IMAGE_PIXELS = None


class ImageError(ValueError):
    """The bytes cannot be turned into an image to OCR (corrupt or truncated)."""

    kind: ErrorKind = "corrupt_image"


class NotAnImageError(ImageError):
    """The bytes are not in an image format we decode."""

    kind: ErrorKind = "not_an_image"


class ImageTooLargeError(ImageError):
    """The image has more pixels than allowed (checked before decoding)."""

    kind: ErrorKind = "too_many_pixels"


class BadDimensionsError(ImageError):
    """The image is longer on one side than allowed, or has no pixels (checked before decoding)."""

    kind: ErrorKind = "bad_dimensions"


class UnreadableImageError(ImageError):
    """The image decoded, but the OCR engine failed on it."""

    kind: ErrorKind = "unreadable"


# Why 20: RapidOCR scales the longest side to 2000 px and rounds each side to a multiple of 32;
# a strip thinner than 1:125 rounds to 0 px and the engine raises. Padding the short side (white,
# which reads as background) to 1:20 keeps every strip readable at a small cost in pixels.
MAX_ASPECT_RATIO = 20


@dataclass(frozen=True)
class ImageLimits:
    """Bounds checked from an image's header, before any pixel is decoded."""

    max_pixels: int
    # Why a side limit beside the pixel limit: a 1 x 39,000,000 PNG is 76 KB and "only" 39 MP,
    # yet decoding and padding it took 1.75 GB; no post image is that long.
    max_side: int = 16384


def decode_image(data: bytes, limits: ImageLimits) -> NDArray[np.uint8]:
    """Decode bytes to an RGB array: first frame, EXIF-rotated, alpha on white, palette to RGB.

    A strip more elongated than 1:20 comes back padded with white to that ratio.
    """
    if not data:
        raise NotAnImageError("empty body: zero bytes")
    try:
        image = Image.open(io.BytesIO(data))
        check_dimensions(*image.size, limits)  # read from the header, nothing decoded yet
        image.seek(0)  # first frame of GIF/WebP/APNG
        image.load()
        return pad_to_aspect(_to_rgb_array(image), MAX_ASPECT_RATIO)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise NotAnImageError("not a supported image format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated or corrupt data as OSError/SyntaxError/ValueError.
        raise ImageError(f"corrupt or truncated image: {exc}") from None


def check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    """Refuse an image by its header's size: too many pixels, a side too long, or none."""
    if width * height > limits.max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height:,} pixels, "
            f"over the {limits.max_pixels:,} limit"
        )
    if width < 1 or height < 1:
        raise BadDimensionsError(f"image is {width}x{height}: it has no pixels")
    if max(width, height) > limits.max_side:
        raise BadDimensionsError(
            f"image is {width}x{height}: a side is over the {limits.max_side:,} pixel limit"
        )


def pad_to_aspect(rgb: NDArray[np.uint8], max_ratio: int) -> NDArray[np.uint8]:
    """Return ``rgb`` padded with white on its short side so it is at most 1:``max_ratio``."""
    height, width = rgb.shape[:2]
    if width > height * max_ratio:
        padded = np.full((-(-width // max_ratio), width, 3), 255, dtype=np.uint8)
    elif height > width * max_ratio:
        padded = np.full((height, -(-height // max_ratio), 3), 255, dtype=np.uint8)
    else:
        return rgb
    padded[:height, :width] = rgb
    return padded


def _to_rgb_array(image: Image.Image) -> NDArray[np.uint8]:
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("P", "PA"):
        # Why: RapidOCR turns palette images into near-black arrays; expand them first.
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
