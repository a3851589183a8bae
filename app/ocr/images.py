"""Turn untrusted image bytes into an RGB array the OCR engine reads correctly."""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

# Why: decode_image checks the pixel count itself, from the header, with a clearer message and
# a limit from settings; Pillow's global check would pre-empt it with its own.
Image.MAX_IMAGE_PIXELS = None


class ImageError(ValueError):
    """The bytes cannot be turned into an image to OCR (corrupt or truncated)."""

    kind = "corrupt_image"


class NotAnImageError(ImageError):
    """The bytes are not in an image format we decode."""

    kind = "not_an_image"


class ImageTooLargeError(ImageError):
    """The image has more pixels than allowed (checked before decoding)."""

    kind = "too_many_pixels"


def decode_image(data: bytes, max_pixels: int) -> NDArray[np.uint8]:
    """Decode bytes to an RGB array: first frame, EXIF-rotated, alpha on white, palette to RGB."""
    if not data:
        raise NotAnImageError("empty body: zero bytes")
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size  # read from the header, nothing decoded yet
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"image is {width}x{height} = {width * height:,} pixels, "
                f"over the {max_pixels:,} limit"
            )
        image.seek(0)  # first frame of GIF/WebP/APNG
        image.load()
        return _to_rgb_array(image)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise NotAnImageError("not a supported image format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated or corrupt data as OSError/SyntaxError/ValueError.
        raise ImageError(f"corrupt or truncated image: {exc}") from None


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
