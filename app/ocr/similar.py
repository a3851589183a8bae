"""Near-duplicate images: a fingerprint that survives re-encoding and resizing, and its index.

A re-posted meme is usually re-encoded or resized, so its bytes (and SHA-256) differ. An image
reuses the OCR output of one already read only when all of these hold:

1. their 256-bit difference hashes (17x16 grey pixels, one bit per horizontal gradient) are
   within ``MAX_HASH_BITS``: cheap, run in the OCR process against every cached hash;
2. their aspect ratios match (the size class): resizing keeps it, a crop or a border does not;
3. the cached image has no QR code, and its smallest text line is still ``MIN_LINE_PX`` tall at
   the size the thumbnails are compared at;
4. the grey thumbnails (at most ``THUMB_WIDTH`` wide, never enlarged), brought to one size and
   blurred, differ by at most ``MAX_BLOCK_DIFFERENCE`` grey levels in every 8x8 block.

Why 3 and 4: one meme template printed with two different contract addresses is 0-4 bits apart
in the hash (docs/benchmarks.md), so the hash alone would hand one image's address to the
other. A changed line of text moves the blocks it covers, as long as its letters are big enough
in the thumbnail to be seen; re-encoding and resizing move every block a little. The thresholds
err on the side of a miss (the image is OCR'd again), never a wrong address;
bench/near_duplicates.py measures both sides.
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from app.ocr.addresses import extract_addresses
from app.ocr.engine import OcrEngine, OcrOutput

HASH_SIDE = 16
HASH_BYTES = HASH_SIDE * HASH_SIDE // 8
# Measured on the bench set: re-encoded or resized copies land 0-20 bits from their original,
# different images 22 or more; the thumbnail check below guards what the hash cannot see.
MAX_HASH_BITS = 12
# Why 384: at this width a text line of 1.5% of the image height still changes its blocks by
# 7+ grey levels when its characters change; narrower loses that, wider costs memory per entry.
THUMB_WIDTH = 384
# Why not smaller than this: below it, a line of small print is a blur and two different
# addresses look alike, so thinner images are never matched (only repeated by bytes or URL).
MIN_COMPARE_WIDTH = 192
BLOCK = 8
BLUR_RADIUS = 1.0
# Copies measured up to 5.5 grey levels; one template printing another address (letters 1.5%
# of the height or more) from 7.4. Smaller letters are MIN_LINE_PX's to refuse.
MAX_BLOCK_DIFFERENCE = 6.0
# The colour's bound when the stored reading holds no address: the new image may print one
# there in a colour of nearly the background's grey, dark red on navy say, which only the
# colour shows (measured: such pictures from 3.8, copies of the bench set's images without an
# address up to 3.2; bench/near_duplicates.py). With an address, the lines read again guard it.
MAX_CHROMA_WITHOUT_ADDRESS = 3.5
# Why 8: the smallest text box (about twice the letters' height) must be this tall in the
# compared thumbnail; a template with another address printed at 5 px there compared as equal.
MIN_LINE_PX = 8.0
# Aspect ratios within 2%: resizing keeps the ratio up to rounding; a crop or a border does not.
MAX_ASPECT_DIFFERENCE = 0.02


@dataclass(frozen=True)
class Fingerprint:
    """What the index keeps of an image: its difference hash, shape and colour thumbnail."""

    dhash: int
    width: int
    height: int
    # zlib-compressed grey pixels: ~19 KB instead of ~100 KB on the bench set.
    thumb: bytes
    thumb_width: int
    thumb_height: int
    # The colour, as the two chroma planes (Cb, Cr) at half the thumbnail's size, compressed.
    # Why: gold or light-blue letters on yellow are nearly the background's grey; only their
    # colour tells one address from another.
    chroma: bytes = b""

    def thumbnail(self) -> Image.Image:
        """Return the grey thumbnail as an image."""
        pixels = zlib.decompress(self.thumb)
        return Image.frombytes("L", (self.thumb_width, self.thumb_height), pixels)

    def chroma_planes(self) -> list[Image.Image]:
        """Return the two chroma thumbnails (Cb, Cr); none for a fingerprint without colour."""
        if not self.chroma:
            return []
        size = _chroma_size(self.thumb_width, self.thumb_height)
        pixels = zlib.decompress(self.chroma)
        half = len(pixels) // 2
        return [
            Image.frombytes("L", size, pixels[:half]),
            Image.frombytes("L", size, pixels[half:]),
        ]


def _chroma_size(thumb_width: int, thumb_height: int) -> tuple[int, int]:
    return max(1, thumb_width // 2), max(1, thumb_height // 2)


def fingerprint(rgb: NDArray[np.uint8]) -> Fingerprint:
    """Return the fingerprint of a decoded RGB image."""
    image = Image.fromarray(rgb)
    width, height = image.size
    thumb_width = min(THUMB_WIDTH, width)
    thumb_height = max(1, round(height * thumb_width / width))
    # Why resize first: one Lanczos pass on the small picture's three channels, and the
    # colour conversion on its pixels only (the two are linear, so the order barely matters).
    small = image.resize((thumb_width, thumb_height), Image.Resampling.LANCZOS)
    thumb, cb, cr = small.convert("YCbCr").split()
    chroma_size = _chroma_size(thumb_width, thumb_height)
    chroma = [plane.resize(chroma_size, Image.Resampling.LANCZOS).tobytes() for plane in (cb, cr)]
    return Fingerprint(
        dhash=difference_hash(thumb),
        width=width,
        height=height,
        thumb=zlib.compress(thumb.tobytes(), 1),
        thumb_width=thumb_width,
        thumb_height=thumb_height,
        chroma=zlib.compress(b"".join(chroma), 1),
    )


def difference_hash(grey: Image.Image) -> int:
    """Return the 256-bit difference hash of a grey image: the sign of each horizontal step."""
    small = grey.resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.int16)
    bits = (pixels[:, :-1] > pixels[:, 1:]).flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def same_shape(a: Fingerprint, b: Fingerprint) -> bool:
    """Tell whether two images have the same aspect ratio and are wide enough to compare."""
    if min(a.thumb_width, b.thumb_width) < MIN_COMPARE_WIDTH:
        return False
    ratio_a, ratio_b = a.width / a.height, b.width / b.height
    return abs(ratio_a - ratio_b) <= MAX_ASPECT_DIFFERENCE * max(ratio_a, ratio_b)


def block_difference(a: Fingerprint, b: Fingerprint) -> float:
    """Return the largest mean difference of any 8x8 block of the two thumbnails, in grey or
    in colour."""
    return max(block_differences(a, b))


def block_differences(a: Fingerprint, b: Fingerprint) -> tuple[float, float]:
    """Return the largest mean difference of any 8x8 block of the two thumbnails in grey, and
    in colour (each chroma plane's 4x4 blocks: the same area at half the size)."""
    grey = _planes_difference(a.thumbnail(), b.thumbnail(), BLOCK)
    colour = 0.0
    for first, second in zip(a.chroma_planes(), b.chroma_planes(), strict=False):
        colour = max(colour, _planes_difference(first, second, BLOCK // 2))
    return grey, colour


def _planes_difference(first: Image.Image, second: Image.Image, block: int) -> float:
    """Return the largest mean difference of any ``block`` x ``block`` square of two planes."""
    # Why shrink the larger: enlarging cannot restore detail the smaller never had.
    size = min(first.size, second.size)
    pixels = []
    for thumb in (first, second):
        if thumb.size != size:
            thumb = thumb.resize(size, Image.Resampling.LANCZOS)
        # Why blur: two resamplers (theirs, ours) place sharp edges a fraction of a pixel
        # apart; a 1 px blur removes that without hiding a changed character.
        thumb = thumb.filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
        pixels.append(np.asarray(thumb, dtype=np.float32))
    difference = np.abs(pixels[0] - pixels[1])
    rows, cols = (size[1] // block) * block, (size[0] // block) * block
    if rows == 0 or cols == 0:
        return float(difference.max(initial=0.0))
    blocks = difference[:rows, :cols].reshape(rows // block, block, cols // block, block)
    return float(blocks.mean(axis=(1, 3)).max())


def hash_candidates(dhash: int, known: bytes) -> list[int]:
    """Return the positions in ``known`` (packed 32-byte hashes) within ``MAX_HASH_BITS``."""
    if not known:
        return []
    table = np.frombuffer(known, dtype=np.uint8).reshape(-1, HASH_BYTES)
    probe = np.frombuffer(dhash.to_bytes(HASH_BYTES, "big"), dtype=np.uint8)
    distances = np.unpackbits(table ^ probe, axis=1).sum(axis=1)
    return [int(i) for i in np.flatnonzero(distances <= MAX_HASH_BITS)]


def reusable(stored: Fingerprint, output: OcrOutput, probe: Fingerprint) -> bool:
    """Tell whether ``output``, read from ``stored``'s image, may stand for ``probe``'s image.

    The hash check has been passed already; this runs the rest, the costly one last.
    """
    if not same_shape(stored, probe) or output.qr:
        # Why not with a QR code: its modules may be finer than the thumbnail shows, and a
        # different code in the same picture is a different address.
        return False
    compare_width = min(stored.thumb_width, probe.thumb_width)
    if output.min_line_px and output.min_line_px * compare_width / stored.width < MIN_LINE_PX:
        return False  # its smallest line is too small in the thumbnail to tell apart
    grey, colour = block_differences(stored, probe)
    colour_bound = MAX_BLOCK_DIFFERENCE
    if not extract_addresses(output.text):
        colour_bound = MAX_CHROMA_WITHOUT_ADDRESS
    return grey <= MAX_BLOCK_DIFFERENCE and colour <= colour_bound


# A line that may hold an address (every address is a run of 32-48 letters and digits; a line
# whose run the OCR cut short in one image may be whole in the other), or a link.
_MAY_MATTER = re.compile(r"[0-9A-Za-z]{16,}|://|www\.|t\.me/", re.IGNORECASE)


def lines_that_matter(lines: Sequence[str], keywords: Collection[str]) -> list[int]:
    """Return the positions of the lines a copy must read the same.

    With an address in the reading: the lines that may hold an address or a link, or hold a
    keyword of any key (case-insensitive). Why not every line: reading them all again costs
    half a full read, and the other lines can deliver nothing (no address, no keyword match);
    what they show is guarded by the thumbnails, grey and colour. Without an address: every
    line, since the new image may print one where this reading has other words ("CA: TBA").
    """
    if not extract_addresses("\n".join(lines)):
        return list(range(len(lines)))
    folded = [word.casefold() for word in keywords]
    return [
        index
        for index, line in enumerate(lines)
        if _MAY_MATTER.search(line) or any(word in line.casefold() for word in folded)
    ]


def lines_agree(
    engine: OcrEngine,
    rgb: NDArray[np.uint8],
    copy_of: OcrOutput,
    size: tuple[int, int],
    which: Sequence[int] | None = None,
) -> bool:
    """Tell whether the lines of ``copy_of`` (those at ``which``, or all) read the same at their
    boxes in ``rgb``.

    ``size`` is the width and height of the image ``copy_of`` was read from; its boxes are
    scaled to ``rgb``'s size (a copy may be resized).
    """
    if len(copy_of.boxes) != len(copy_of.lines):
        return False  # read before boxes were kept: nothing to check against
    scale_x, scale_y = rgb.shape[1] / size[0], rgb.shape[0] / size[1]
    chosen = range(len(copy_of.lines)) if which is None else which
    lines = [copy_of.lines[i][0] for i in chosen]
    boxes = [tuple((x * scale_x, y * scale_y) for x, y in copy_of.boxes[i]) for i in chosen]
    return engine.reread(rgb, lines, boxes)


@dataclass(frozen=True)
class Match:
    """An image of the index that a probe looks like a copy of, and what was read from it."""

    entry_id: int
    fingerprint: Fingerprint
    output: OcrOutput


@dataclass(frozen=True)
class KnownHashes:
    """A snapshot of the index's hashes for an OCR process to compare with, and their ids."""

    packed: bytes
    ids: tuple[int, ...]


class NearDuplicateIndex:
    """A bounded, time-windowed LRU of fingerprints and the OCR output read from each image."""

    def __init__(self, max_entries: int, ttl_s: float) -> None:
        self._max_entries = max_entries
        self._ttl_s = ttl_s
        self._entries: OrderedDict[int, tuple[float, Fingerprint, OcrOutput]] = OrderedDict()
        self._next_id = 0
        self._snapshot: KnownHashes | None = None
        # Images answered as copies of one already read (every line read again the same).
        self.hits = 0
        # Images that looked like a copy, but a line read differently: read in full.
        self.refused = 0

    def __len__(self) -> int:
        return len(self._entries)

    def known(self) -> KnownHashes:
        """Return the hashes of the fresh entries, packed, for ``hash_candidates``."""
        if self._snapshot is None:
            self._drop_expired()
            ids = tuple(self._entries)
            packed = b"".join(self._entries[i][1].dhash.to_bytes(HASH_BYTES, "big") for i in ids)
            self._snapshot = KnownHashes(packed, ids)
        return self._snapshot

    async def confirm(self, probe: Fingerprint, candidate_ids: list[int]) -> Match | None:
        """Return the first candidate whose thumbnails pass every check, or None.

        Its lines are still to be read again on the probe's pixels (``verified`` when they agree).
        """
        for entry_id in candidate_ids:
            entry = self._entries.get(entry_id)
            if entry is None or time.monotonic() - entry[0] > self._ttl_s:
                continue  # evicted or expired since the snapshot
            _, stored, output = entry
            # Why a thread: comparing thumbnails takes ~1-2 ms of numpy and Pillow, which
            # release the GIL; the event loop keeps moving records meanwhile.
            if await asyncio.to_thread(reusable, stored, output, probe):
                return Match(entry_id, stored, output)
        return None

    def verified(self, match: Match) -> None:
        """Count a copy answered from ``match``'s reading, and keep that entry fresh."""
        self.hits += 1
        if match.entry_id in self._entries:
            self._entries.move_to_end(match.entry_id)

    def add(self, print_: Fingerprint, output: OcrOutput) -> None:
        """Remember an image's fingerprint and output, evicting the least recently used."""
        self._entries[self._next_id] = (time.monotonic(), print_, output)
        self._next_id += 1
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        self._snapshot = None

    def _drop_expired(self) -> None:
        now = time.monotonic()
        expired = [
            i for i, (stored_at, _, _) in self._entries.items() if now - stored_at > self._ttl_s
        ]
        for entry_id in expired:
            del self._entries[entry_id]
