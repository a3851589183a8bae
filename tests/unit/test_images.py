"""Image decoding of untrusted bytes: formats, orientation, transparency, bombs, junk."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.ocr.images import (
    ImageError,
    ImageLimits,
    ImageTooLargeError,
    NotAnImageError,
    decode_image,
)
from tests.conftest import DATA

LIMITS = ImageLimits(max_pixels=40_000_000)


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def test_palette_png_becomes_true_colour() -> None:
    # RapidOCR reads palette PNGs as near-black; we must hand it real colours.
    image = Image.new("RGB", (40, 20), "white").convert("P")
    rgb = decode_image(_encode(image, "PNG"), LIMITS)
    assert rgb.shape == (20, 40, 3)
    assert rgb.mean() > 250


def test_transparent_pixels_land_on_white() -> None:
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    rgb = decode_image(_encode(image, "PNG"), LIMITS)
    assert (rgb == 255).all()


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (60, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    rgb = decode_image(_encode(image, "JPEG", exif=exif), LIMITS)
    assert rgb.shape[:2] == (60, 20)


def test_first_frame_of_an_animation() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("white", "black")]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(data, LIMITS).mean() > 250


def test_pixel_bomb_is_refused_before_decoding() -> None:
    # A 20000x20000 PNG of one colour is a few hundred KB but 400 MP decoded.
    data = _encode(Image.new("1", (20000, 20000)), "PNG")
    assert len(data) < 1_000_000
    with pytest.raises(ImageTooLargeError, match="400,000,000 pixels"):
        decode_image(data, LIMITS)


def test_pixel_cap_is_inclusive() -> None:
    data = _encode(Image.new("RGB", (100, 100), "white"), "PNG")
    assert decode_image(data, ImageLimits(max_pixels=10_000)).shape == (100, 100, 3)
    with pytest.raises(ImageTooLargeError):
        decode_image(data, ImageLimits(max_pixels=9_999))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", NotAnImageError),
        (b"<html><body>not found</body></html>", NotAnImageError),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', NotAnImageError),
        ((DATA / "s30_promo.png").read_bytes()[:2000], ImageError),
        ((DATA / "s00_promo.jpg").read_bytes()[:1500], ImageError),
    ],
    ids=["zero-bytes", "html", "svg", "truncated-png", "truncated-jpeg"],
)
def test_junk_is_refused_with_a_clear_error(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_image(data, LIMITS)


def test_real_image_decodes_to_rgb() -> None:
    rgb = decode_image((DATA / "s10_sol.jpg").read_bytes(), LIMITS)
    assert rgb.dtype == np.uint8
    assert rgb.shape == (300, 400, 3)
