"""Inputs an attacker would send, made by the tests (nothing of them is stored)."""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image

# Each code of the grid: this many control characters (zxing-cpp renders each as "<SOH>").
QR_GRID_CHARS = 1700


@lru_cache(maxsize=1)
def qr_grid_png(side: int = 12, cell: int = 290) -> bytes:
    """Return a ``side`` x ``side`` grid of QR codes, each of QR_GRID_CHARS control characters.

    12 x 12 is 3480 x 3480 px and ~100 KB as PNG; every code differs, so none is de-duplicated.
    Read whole, its codes came to over 1 MB of text: an ocr_result Kafka refused.
    """
    import segno  # a test dependency

    grid = Image.new("L", (side * cell, side * cell), 255)
    for i in range(side * side):
        data = bytes([1 + i % 31, 1 + (i // 31) % 31]) + b"\x01" * (QR_GRID_CHARS - 2)
        code = segno.make(data, error="l", mode="byte", boost_error=False)
        buffer = io.BytesIO()
        code.save(buffer, kind="png", scale=1, border=2)
        tile = Image.open(buffer).convert("L")
        scale = max(1, (cell - 4) // tile.width)
        tile = tile.resize((tile.width * scale, tile.height * scale), Image.Resampling.NEAREST)
        grid.paste(tile, ((i % side) * cell + 2, (i // side) * cell + 2))
    out = io.BytesIO()
    grid.save(out, format="PNG", optimize=True)
    return out.getvalue()


def control_text(chars: int = 99_993) -> str:
    """Return post text of control characters: each is six bytes once escaped in JSON."""
    return "\x01" * chars
