"""Token contract addresses (``buy_ca``) found in post text and OCR text.

Pure functions. An address is only reported when it is well-formed for its network; OCR
confusions are repaired only where a checksum then validates the result, never by guessing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from Crypto.Hash import keccak

from models.events import BuyCa

# Look-alike characters OCR and copy-paste put into addresses (Cyrillic, Greek, full-width).
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "к": "k",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
        "С": "C", "Т": "T", "Х": "X", "Ѕ": "S", "і": "i", "І": "I", "ј": "j",
        "ο": "o", "Ο": "O", "α": "a", "ν": "v", "Α": "A", "Β": "B", "Ε": "E", "Τ": "T",
        "０": "0", "ｘ": "x",
    }
)  # fmt: skip

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(BASE58_ALPHABET)}

# EVM: 0x + 40 hex. OCR also yields "Ox"/"0X"/"x" prefixes and O/o inside the hex body.
_EVM_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])(0x|0X|Ox|OX|ox|x)([0-9A-Fa-fOo]{40})(?![0-9A-Za-z])")
# Solana: 32-44 base58 characters (a 32-byte public key).
_SOLANA_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])[1-9A-HJ-NP-Za-km-z]{32,44}(?![0-9A-Za-z])")
# Tron: T + 33 base58 characters (base58check of 0x41 + 20 bytes).
_TRON_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])T[1-9A-HJ-NP-Za-km-z]{33}(?![0-9A-Za-z])")

# Characters OCR reads in place of a hex digit, and what they may stand for.
_EVM_BODY_CONFUSIONS = {"1": "f", "5": "b"}


def extract_addresses(text: str) -> list[BuyCa]:
    """Return every contract address in ``text``, de-duplicated, in order of appearance."""
    clean = text.translate(_HOMOGLYPHS)
    found: list[tuple[int, BuyCa]] = []
    found.extend(_find_evm(clean))
    found.extend(_find_tron(clean))
    found.extend(_find_solana(clean))
    found.sort(key=lambda pair: pair[0])
    seen: set[tuple[str, str]] = set()
    result: list[BuyCa] = []
    for _, ca in found:
        ident = (ca.network, ca.address.lower() if ca.network == "evm" else ca.address)
        if ident not in seen:
            seen.add(ident)
            result.append(ca)
    return result


# --- EVM ---------------------------------------------------------------------------------


def eip55_checksum(hex40: str) -> str:
    """Return the EIP-55 mixed-case form of a 40-hex-digit address body."""
    lower = hex40.lower()
    digest = keccak.new(digest_bits=256, data=lower.encode()).hexdigest()
    # digest has 64 nibbles; EIP-55 uses the first 40, one per address character.
    return "".join(
        c.upper() if c.isalpha() and int(d, 16) >= 8 else c
        for c, d in zip(lower, digest[:40], strict=True)
    )


def is_valid_evm(address: str) -> bool:
    """Tell whether ``address`` is 0x + 40 hex and, when mixed-case, passes EIP-55."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
        return False
    body = address[2:]
    if body == body.lower() or body == body.upper():
        return True
    return eip55_checksum(body) == body


def _find_evm(text: str) -> Iterator[tuple[int, BuyCa]]:
    for match in _EVM_CANDIDATE.finditer(text):
        address = _repair_evm(match.group(2))
        if address is not None:
            yield match.start(), BuyCa(network="evm", address=address)


def _repair_evm(body: str) -> str | None:
    """Return ``0x`` + a valid body, repairing O→0 and one confused digit only under EIP-55."""
    has_letter_o = "O" in body or "o" in body
    fixed = body.replace("O", "0").replace("o", "0")
    mixed = fixed != fixed.lower() and fixed != fixed.upper()
    if not mixed:
        # Single-case addresses carry no checksum: accept only what OCR read verbatim.
        return None if has_letter_o else "0x" + fixed
    checksummed = eip55_checksum(fixed)
    if checksummed == fixed:
        return "0x" + fixed
    # One letter read in the wrong case (c/C, f/F...): the checksum pins every letter's case,
    # so the repaired form is unique. More than one flip is not trusted: a wrong digit makes a
    # random case pattern, which lands within one flip only 16 times in 32768.
    if sum(a != b for a, b in zip(fixed, checksummed, strict=True)) == 1:
        return "0x" + checksummed
    # One confused character: accept only if exactly one substitution passes EIP-55.
    repaired = {
        candidate
        for i, ch in enumerate(fixed)
        for alt in _confusions(ch)
        if eip55_checksum(candidate := fixed[:i] + alt + fixed[i + 1 :]) == candidate
    }
    if len(repaired) == 1:
        return "0x" + repaired.pop()
    return None


def _confusions(ch: str) -> list[str]:
    alt = _EVM_BODY_CONFUSIONS.get(ch.lower())
    if alt is None or alt not in "0123456789abcdef":
        return []
    return [alt, alt.upper()] if alt.isalpha() else [alt]


# --- base58 (Solana, Tron) -----------------------------------------------------------------


def b58decode(text: str) -> bytes:
    """Decode base58 (Bitcoin alphabet); raise ValueError on a foreign character."""
    number = 0
    for ch in text:
        try:
            number = number * 58 + _B58_INDEX[ch]
        except KeyError:
            raise ValueError(f"not a base58 character: {ch!r}") from None
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading_zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading_zeros + body


def is_valid_solana(address: str) -> bool:
    """Tell whether ``address`` is base58 for exactly 32 bytes and not an ordinary word."""
    if not 32 <= len(address) <= 44:
        return False
    # Why: prose never has 32+ letters without a digit and a case change; keys nearly always do.
    has_digit = any(c.isdigit() for c in address)
    has_upper = any(c.isupper() for c in address)
    has_lower = any(c.islower() for c in address)
    if not (has_digit and (has_upper or has_lower)) and not (has_upper and has_lower):
        return False
    try:
        return len(b58decode(address)) == 32
    except ValueError:
        return False


def _find_solana(text: str) -> Iterator[tuple[int, BuyCa]]:
    for match in _SOLANA_CANDIDATE.finditer(text):
        address = match.group(0)
        if is_valid_tron(address):
            continue  # reported as Tron
        if is_valid_solana(address):
            yield match.start(), BuyCa(network="solana", address=address)


def is_valid_tron(address: str) -> bool:
    """Tell whether ``address`` is a base58check Tron address (0x41 + 20 bytes)."""
    if len(address) != 34 or not address.startswith("T"):
        return False
    try:
        raw = b58decode(address)
    except ValueError:
        return False
    if len(raw) != 25 or raw[0] != 0x41:
        return False
    payload, check = raw[:21], raw[21:]
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == check


def _find_tron(text: str) -> Iterator[tuple[int, BuyCa]]:
    for match in _TRON_CANDIDATE.finditer(text):
        if is_valid_tron(match.group(0)):
            yield match.start(), BuyCa(network="tron", address=match.group(0))
