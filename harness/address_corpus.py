"""Text that holds no address, and addresses of every network, made from a seed.

The negative corpus is what a post or an image shows beside addresses and must never be
reported as one: transaction hashes of each chain, hex dumps, base64 blobs, URLs with tokens,
UUIDs. The positive set is one well-formed address per draw, of each network ``buy_ca`` knows.
Shared by tests/unit/test_addresses.py (a sample) and bench/addresses.py (the measurement).
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable

from app.ocr.addresses import crc16_xmodem
from harness.variants import attack_address, b58encode

_HEX = "0123456789abcdef"
_WORDS = ("launch", "pepe", "gm", "tx", "hash", "block", "id", "ref", "wagmi", "sig", "data")


# Where posts and images put an address: after "CA:", alone, on its own line, before
# punctuation, in brackets, in explorer, swap and query links.
LAYOUTS = (
    "CA: {} buy now",
    "{}",
    "CA:\n{}\nLFG",
    "CA:{}, LP burnt",
    "({})",
    "ca={}.",
    "https://dexscreener.com/solana/{}",
    "tonviewer.com/{}/chart",
    "pump.fun/{}",
    "https://gmgn.ai/sol/token/{}",
    "https://raydium.io/swap/?inputMint=sol&outputMint={}&x=1",
    "https://jup.ag/swap/SOL-{}",
)


def _bytes(rng: random.Random, count: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(count))


def _hex(rng: random.Random, digits: int) -> str:
    return "".join(rng.choice(_HEX) for _ in range(digits))


def _hex_dump(rng: random.Random) -> str:
    lines = []
    for row in range(rng.randrange(1, 6)):
        data = _bytes(rng, 16)
        pairs = " ".join(data[i : i + 2].hex() for i in range(0, 16, 2))
        shown = "".join(chr(b) if 32 <= b < 127 else "." for b in data)
        lines.append(f"{row * 16:08x}: {pairs}  {shown}")
    return "\n".join(lines)


def _base64_blob(rng: random.Random) -> str:
    data = _bytes(rng, rng.randrange(16, 600))
    text = (base64.urlsafe_b64encode if rng.random() < 0.5 else base64.b64encode)(data).decode()
    if rng.random() < 0.5:  # wrapped at 76, as MIME writes it
        text = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    return text


def _url(rng: random.Random) -> str:
    host = rng.choice(["cdn.example.com", "pbs.twimg.com", "t.me", "i.imgur.com", "x.com"])
    token = base64.urlsafe_b64encode(_bytes(rng, rng.randrange(8, 64))).decode().rstrip("=")
    path = rng.choice(
        [f"/media/{token}.jpg", f"/{_hex(rng, 64)}", f"/s/{token}", f"/tx/0x{_hex(rng, 64)}"]
    )
    return f"https://{host}{path}?token={token}&sig={_hex(rng, 40)}"


# Each kind of text that is not an address, by name.
NOT_ADDRESSES: dict[str, Callable[[random.Random], str]] = {
    "evm tx hash": lambda rng: "0x" + _hex(rng, 64),
    "bare 64 hex (sha256, Sui digest)": lambda rng: _hex(rng, 64),
    "solana signature": lambda rng: b58encode(_bytes(rng, 64)),
    "ton tx hash (base64)": lambda rng: base64.b64encode(_bytes(rng, 32)).decode(),
    "ton tx hash (base64url, 48)": lambda rng: base64.urlsafe_b64encode(_bytes(rng, 36)).decode(),
    "bitcoin tx id": lambda rng: _hex(rng, 64),
    "hex dump": _hex_dump,
    "base64 blob": _base64_blob,
    "url with tokens": _url,
    "uuid": lambda rng: str(uuid.UUID(bytes=_bytes(rng, 16))),
    "jwt": lambda rng: ".".join(
        base64.urlsafe_b64encode(_bytes(rng, n)).decode().rstrip("=") for n in (24, 96, 32)
    ),
    "ratio and time": lambda rng: f"{rng.randrange(100)}:{_hex(rng, 8)} at 0:{rng.randrange(60)}",
}


def not_an_address(rng: random.Random) -> tuple[str, str]:
    """Return (kind, text) of one piece of text that holds no address, in a short sentence."""
    kind = rng.choice(sorted(NOT_ADDRESSES))
    body = NOT_ADDRESSES[kind](rng)
    return kind, f"{rng.choice(_WORDS)} {body} {rng.choice(_WORDS)}"


def ton_address(rng: random.Random, bounceable: bool = True, masterchain: bool = False) -> str:
    """Return a mainnet TON user-friendly address (base64url, its CRC16 right)."""
    flags = 0x11 if bounceable else 0x51
    head = bytes([flags, 0xFF if masterchain else 0x00]) + _bytes(rng, 32)
    return base64.urlsafe_b64encode(head + crc16_xmodem(head).to_bytes(2, "big")).decode()


def sui_coin_type(rng: random.Random) -> str:
    """Return a Sui coin type, ``0x<64 hex>::module::NAME``."""
    name = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randrange(3, 7)))
    return f"0x{_hex(rng, 64)}::{name.lower()}::{name}"


def an_address(rng: random.Random) -> tuple[str, str]:
    """Return (network, address) of one well-formed address of a random network."""
    network = rng.choice(["evm", "solana", "tron", "ton", "ton raw", "sui"])
    seed = rng.randrange(1 << 30)
    if network in ("evm", "solana", "tron"):
        return network, attack_address(network, seed)
    if network == "ton":
        return "ton", ton_address(rng, bounceable=rng.random() < 0.5)
    if network == "ton raw":
        return "ton", f"0:{_hex(rng, 64)}"
    return "sui", sui_coin_type(rng)
