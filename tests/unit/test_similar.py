"""The near-duplicate check: copies of a picture match, other pictures (and addresses) do not."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from app.ocr.engine import OcrOutput
from app.ocr.images import ImageLimits, decode_image
from app.ocr.similar import (
    HASH_BYTES,
    MAX_BLOCK_DIFFERENCE,
    MAX_CHROMA_WITHOUT_ADDRESS,
    MAX_HASH_BITS,
    Fingerprint,
    NearDuplicateIndex,
    block_difference,
    block_differences,
    fingerprint,
    hash_candidates,
    lines_that_matter,
    reusable,
    same_shape,
)
from harness.variants import (
    COPIES,
    TEMPLATES,
    Template,
    attack_address,
    attack_fonts,
    jpeg,
    png,
    promo,
    random_address,
    resized,
    with_address,
)

DATA = Path(__file__).resolve().parents[1] / "data"
IMAGES = sorted(p for p in DATA.iterdir() if p.name.startswith("s"))
LIMITS = ImageLimits(max_pixels=50_000_000)
# An output whose text lines are large enough to be compared in any thumbnail used here, with
# an address (a reading without one has a stricter colour bound: tested on its own below).
READ = OcrOutput(
    lines=[("gm", 0.99), ("CA: 0x979097B35B88A0c32751f9732d5d37c609B3f1Ad", 0.99)],
    min_line_px=40.0,
)
NO_ADDRESS = OcrOutput(lines=[("gm", 0.99)], min_line_px=40.0)


def _print(data: bytes) -> Fingerprint:
    return fingerprint(decode_image(data, LIMITS))


def _matches(a: Fingerprint, b: Fingerprint) -> bool:
    return (a.dhash ^ b.dhash).bit_count() <= MAX_HASH_BITS and reusable(a, READ, b)


def test_copies_of_a_picture_match_it() -> None:
    pairs = []
    for path in IMAGES:
        original = _print(path.read_bytes())
        with Image.open(path) as image:
            pairs += [
                (original, _print(copy)) for copy in (copy(image) for copy in COPIES.values())
            ]
    hits = sum(_matches(original, copy) for original, copy in pairs)
    # Measured on the 29 bench images: 142 of 145 copies (bench/near_duplicates.py).
    assert hits >= len(pairs) - 1, f"{hits} of {len(pairs)} copies matched"
    # A reading without an address allows less colour difference (the new image might print
    # one nearly in the background's grey): most copies still match, a few are read again.
    strict = sum(
        (a.dhash ^ b.dhash).bit_count() <= MAX_HASH_BITS and reusable(a, NO_ADDRESS, b)
        for a, b in pairs
    )
    assert strict >= len(pairs) * 0.8, f"{strict} of {len(pairs)} copies matched"


def test_different_pictures_never_match() -> None:
    prints = [_print(path.read_bytes()) for path in IMAGES]
    for i, first in enumerate(prints):
        for second in prints[i + 1 :]:
            assert not _matches(first, second)


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
@pytest.mark.parametrize("font_fraction", [0.015, 0.02, 0.03])
def test_one_template_with_two_addresses_does_not_match(path: Path, font_fraction: float) -> None:
    with Image.open(path) as image:
        first = _print(with_address(image, random_address(1), font_fraction))
        second_bytes = with_address(image, random_address(2), font_fraction)
        second = _print(second_bytes)
        with Image.open(io.BytesIO(second_bytes)) as stamped:
            halved = _print(resized(stamped, 0.5))
    assert block_difference(first, second) > MAX_BLOCK_DIFFERENCE
    assert not _matches(first, second)
    assert not _matches(first, halved)


def test_a_line_too_small_for_the_thumbnail_forbids_reuse() -> None:
    with Image.open(IMAGES[0]) as image:
        original = _print(jpeg(image, 95))
        copy = _print(jpeg(image, 80))
    assert reusable(original, READ, copy)
    # 3 px letters' boxes in a 400 px image stay 3 px in its thumbnail: under the 8 px floor.
    tiny = OcrOutput(lines=[("0x..", 0.9)], min_line_px=6.0)
    assert not reusable(original, tiny, copy)


def test_an_image_with_a_qr_code_is_never_reused_by_similarity() -> None:
    with Image.open(IMAGES[0]) as image:
        original = _print(jpeg(image, 95))
        copy = _print(jpeg(image, 80))
    assert not reusable(original, OcrOutput(lines=READ.lines, qr=["ethereum:0x1"]), copy)


def test_another_aspect_ratio_is_another_picture() -> None:
    with Image.open(IMAGES[0]) as image:
        original = _print(jpeg(image, 95))
        cropped = _print(jpeg(image.crop((0, 0, image.width, image.height - 40)), 95))
    assert not same_shape(original, cropped)


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(1, 900),
    height=st.integers(1, 900),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_image_has_a_fingerprint_equal_to_itself(width: int, height: int, seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    print_ = fingerprint(rgb)
    assert 0 <= print_.dhash < 2 ** (8 * HASH_BYTES)
    assert print_.thumbnail().size == (print_.thumb_width, print_.thumb_height)
    assert block_difference(print_, print_) == 0.0


@given(
    hashes=st.lists(st.integers(0, 2 ** (8 * HASH_BYTES) - 1), max_size=50),
    probe=st.integers(0, 2 ** (8 * HASH_BYTES) - 1),
    flips=st.lists(st.integers(0, 8 * HASH_BYTES - 1), max_size=20),
)
def test_hash_candidates_are_the_hashes_within_the_distance(
    hashes: list[int], probe: int, flips: list[int]
) -> None:
    near = probe
    for bit in flips:
        near ^= 1 << bit
    known = [*hashes, near]
    packed = b"".join(h.to_bytes(HASH_BYTES, "big") for h in known)
    expected = [i for i, h in enumerate(known) if (h ^ probe).bit_count() <= MAX_HASH_BITS]
    assert hash_candidates(probe, packed) == expected


async def test_the_index_answers_a_copy_and_forgets_past_its_bounds() -> None:
    with Image.open(IMAGES[0]) as image:
        original = _print(jpeg(image, 95))
        copy = _print(jpeg(image, 80))
    with Image.open(IMAGES[1]) as image:
        other = _print(jpeg(image, 95))
    index = NearDuplicateIndex(max_entries=1, ttl_s=3600)
    index.add(original, READ)
    known = index.known()
    candidates = [known.ids[i] for i in hash_candidates(copy.dhash, known.packed)]
    match = await index.confirm(copy, candidates)
    assert match is not None and match.output is READ and match.fingerprint is original
    index.verified(match)  # its lines read the same in the copy (the runtime checks)
    assert index.hits == 1
    index.add(other, OcrOutput())  # evicts the first: the bound is one entry
    assert len(index) == 1
    assert await index.confirm(copy, candidates) is None
    expired = NearDuplicateIndex(max_entries=4, ttl_s=-1)  # stale at once
    expired.add(original, READ)
    assert expired.known().ids == ()


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.name)
def test_an_address_in_nearly_the_backgrounds_grey_shows_in_the_colour(template: Template) -> None:
    # The template without its address line, and the victim's with one nearly in its grey.
    font = attack_fonts()[0]
    bare = _print(png(promo(template, font, None, faint=True)))
    victim = _print(png(promo(template, font, attack_address("tron", 7), faint=True)))
    grey, colour = block_differences(bare, victim)
    assert grey <= MAX_BLOCK_DIFFERENCE  # the grey alone would take one for the other
    assert colour > MAX_CHROMA_WITHOUT_ADDRESS
    assert not reusable(bare, NO_ADDRESS, victim)


def test_the_lines_to_read_again_are_those_that_may_deliver_something() -> None:
    lines = [
        "$PEPE PRESALE LIVE",
        "LP burned, ownership renounced",
        "CA: 0x979097B35B88A0c32751f9732d5d37c609B3f1Ad",
        "join t.me/pepe",
        "gm frens",
    ]
    assert lines_that_matter(lines, []) == [2, 3]
    assert lines_that_matter(lines, ["PRESALE", "frens"]) == [0, 2, 3, 4]
    # Without an address in the reading, any line may be where the new image prints one.
    assert lines_that_matter(["CA: TBA", "gm"], []) == [0, 1]
