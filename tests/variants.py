"""Copies of a picture as re-posting makes them, and one template printing other addresses.

Shared by bench/near_duplicates.py and the near-duplicate tests, so both measure the same cases.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageFont


def jpeg(image: Image.Image, quality: int) -> bytes:
    """Return ``image`` re-encoded as JPEG at ``quality``."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def resized(image: Image.Image, fraction: float) -> bytes:
    """Return ``image`` scaled by ``fraction`` (Lanczos), as PNG."""
    size = (max(1, round(image.width * fraction)), max(1, round(image.height * fraction)))
    buffer = io.BytesIO()
    image.resize(size, Image.Resampling.LANCZOS).save(buffer, format="PNG")
    return buffer.getvalue()


COPIES: dict[str, Callable[[Image.Image], bytes]] = {
    "JPEG q60": lambda image: jpeg(image, 60),
    "JPEG q80": lambda image: jpeg(image, 80),
    "JPEG q95": lambda image: jpeg(image, 95),
    "resized 50%": lambda image: resized(image, 0.5),
    "resized 75%": lambda image: resized(image, 0.75),
}


def random_address(seed: int) -> str:
    """Return a made-up EVM address, the same for the same seed."""
    rng = random.Random(seed)
    return "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40))


def with_address(image: Image.Image, address: str, font_fraction: float) -> bytes:
    """Return ``image`` with a white band near its foot printing ``address`` (a template).

    The letters are ``font_fraction`` of the image's height tall (8 px at least), as PNG.
    """
    stamped = image.convert("RGB")
    draw = ImageDraw.Draw(stamped)
    size = max(8, int(stamped.height * font_fraction))
    top = int(stamped.height * 0.85)
    draw.rectangle(
        (int(stamped.width * 0.05), top - 4, int(stamped.width * 0.95), top + size + 6),
        fill="white",
    )
    font = ImageFont.load_default(size=size)
    draw.text((int(stamped.width * 0.06), top), f"CA: {address}", fill="black", font=font)
    buffer = io.BytesIO()
    stamped.save(buffer, format="PNG")
    return buffer.getvalue()
