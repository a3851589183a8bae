"""Copies of a picture as re-posting makes them, and one template printing other addresses.

Shared by bench/near_duplicates.py and the near-duplicate tests, so both measure the same cases.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass

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


# --- Attacks on the near-duplicate check (issue 22) ---------------------------------------------
#
# An attacker makes an image that looks like a victim's (the same template, another address;
# or the victim's own picture with a second address drawn in a colour of nearly the
# background's grey) and sends it first, through a post or POST /ocr, so that the victim's
# image (the original, or a JPEG or resized copy) would reuse the attacker's reading.

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# Fonts a Debian machine has; Pillow's own is always there.
_FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)


def b58encode(data: bytes) -> str:
    """Return ``data`` in base58 (the Bitcoin alphabet), as Solana and Tron write keys."""
    number = int.from_bytes(data, "big")
    text = ""
    while number:
        number, digit = divmod(number, 58)
        text = _B58[digit] + text
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + text


def attack_address(network: str, seed: int) -> str:
    """Return a well-formed address of ``network`` (evm EIP-55, solana, tron), by seed."""
    import hashlib

    from app.ocr.addresses import eip55_checksum

    rng = random.Random(f"{network}:{seed}")
    if network == "evm":
        return "0x" + eip55_checksum("".join(rng.choice("0123456789abcdef") for _ in range(40)))
    if network == "solana":
        while True:  # 44 characters, the usual length of a mint address
            text = b58encode(bytes(rng.randrange(256) for _ in range(32)))
            if len(text) == 44:
                return text
    body = b"\x41" + bytes(rng.randrange(256) for _ in range(20))
    check = hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4]
    return b58encode(body + check)


def attack_fonts() -> list[str | None]:
    """Return the font files found here, and None for Pillow's own font."""
    from pathlib import Path

    return [path for path in _FONT_FILES if Path(path).exists()] + [None]


def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


@dataclass(frozen=True)
class Template:
    """A promo picture without its address: a background, a title, and where the CA goes."""

    name: str
    background: tuple[int, int, int]
    ink: tuple[int, int, int]
    # Colours of nearly the background's grey (within 5-16 levels of luma), that OCR still reads.
    faint: tuple[tuple[int, int, int], ...]


TEMPLATES = (
    Template("yellow", (250, 222, 70), (40, 30, 10), ((170, 200, 250), (255, 190, 230))),
    Template("night", (22, 26, 48), (235, 235, 245), ((80, 10, 20), (10, 45, 20))),
    Template("mint", (190, 240, 210), (20, 60, 40), ((170, 220, 255), (255, 205, 230))),
)


def promo(
    template: Template,
    font: str | None,
    address: str | None,
    *,
    faint: bool = False,
    hidden: str | None = None,
    address_fraction: float = 0.04,
    size: tuple[int, int] = (1200, 675),
) -> Image.Image:
    """Return a promo image of ``template`` printing ``address`` (``faint``: in a colour of
    nearly the background's grey; None: no address line); ``hidden`` adds a second address so,
    above the first."""
    image = Image.new("RGB", size, template.background)
    draw = ImageDraw.Draw(image)
    width, height = size
    rng = random.Random(template.name)
    for _ in range(6):  # the template's decoration: the same in every copy of it
        x, y = rng.randrange(width), rng.randrange(height // 2)
        radius = rng.randrange(20, 90)
        draw.ellipse(
            (x - radius, y - radius, x + radius, y + radius), outline=template.ink, width=4
        )
    draw.text((60, 60), "$PEPE PRESALE LIVE", fill=template.ink, font=_font(font, height // 9))
    draw.text(
        (60, 200),
        "LP burned, ownership renounced",
        fill=template.ink,
        font=_font(font, height // 18),
    )
    letters = _font(font, max(10, int(height * address_fraction)))
    line_height = int(height * address_fraction * 1.6)
    if hidden is not None:
        colour = template.faint[0]
        draw.text((60, height - 3 * line_height - 40), f"CA: {hidden}", fill=colour, font=letters)
    ink = template.faint[1] if faint else template.ink
    if address is not None:
        draw.text((60, height - line_height - 40), f"CA: {address}", fill=ink, font=letters)
    return image


def png(image: Image.Image) -> bytes:
    """Return ``image`` as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Attack:
    """The attacker's image, sent first, and the victim's images that follow it."""

    label: str
    attacker: bytes
    victims: tuple[tuple[str, bytes], ...]  # (how the victim's image was made, its bytes)
    victim_address: str


def attacks(limit: int | None = None) -> list[Attack]:
    """Return the attack cases: each template, font and network, both kinds of attack."""
    cases: list[Attack] = []
    networks = ("evm", "solana", "tron")
    for t_index, template in enumerate(TEMPLATES):
        for f_index, font in enumerate(attack_fonts()):
            network = networks[(t_index + f_index) % len(networks)]
            victim_address = attack_address(network, 100 * t_index + f_index)
            attacker_address = attack_address(network, 100 * t_index + f_index + 50)
            label = f"{template.name}/{font.rsplit('/', 1)[-1] if font else 'pillow'}/{network}"
            for faint in (False, True):
                victim = promo(template, font, victim_address, faint=faint)
                copies = (
                    ("original", png(victim)),
                    ("JPEG q85", jpeg(victim, 85)),
                    ("resized 75%", resized(victim, 0.75)),
                )
                how = "faint" if faint else "inked"
                # 1. The same template printing the attacker's address instead.
                swapped = png(promo(template, font, attacker_address, faint=faint))
                cases.append(
                    Attack(f"{label}: another {how} address", swapped, copies, victim_address)
                )
                # 2. The victim's own picture with the attacker's address hidden above it.
                hidden = png(
                    promo(template, font, victim_address, faint=faint, hidden=attacker_address)
                )
                cases.append(
                    Attack(
                        f"{label}: {how}, a faint second address", hidden, copies, victim_address
                    )
                )
                # 3. The template before its address was printed: other words in its place, or
                # no line at all.
                blank = png(promo(template, font, "TBA", faint=faint))
                cases.append(
                    Attack(f"{label}: {how}, no address yet", blank, copies, victim_address)
                )
                bare = png(promo(template, font, None, faint=faint))
                cases.append(
                    Attack(f"{label}: {how}, no address line", bare, copies, victim_address)
                )
    return cases[:limit]
