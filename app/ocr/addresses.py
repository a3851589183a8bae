"""Token contract addresses (``buy_ca``) found in post text and OCR text.

Pure functions. An address is only reported when it is well-formed for its network; OCR
confusions are repaired only where a checksum then validates the result, never by guessing.
Networks: EVM (EIP-55), Solana (32-byte base58), Tron (base58check), TON (user-friendly form
with its CRC16, or the raw ``0:<hex>`` form) and Move coin types ``0x<64 hex>::module::NAME``
(Sui, or Aptos where the text says so). A bare 64-hex string is never reported: it is as
often a transaction or block hash on any chain.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import itertools
import re
from collections.abc import Iterator
from typing import Literal, cast

from Crypto.Hash import keccak

from models.events import BuyCa, Chain

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

# TON, user-friendly: 36 bytes (flags, workchain, 32-byte account, CRC16) as 48 characters of
# base64url (or standard base64). Raw: workchain, a colon, the account in hex (no checksum).
# Why "/" may touch it: explorers link one as tonviewer.com/EQ...; its CRC16, flags and
# workchain leave a random 48 characters one chance in a billion.
_TON_CANDIDATE = re.compile(r"(?<![A-Za-z0-9+_-])[A-Za-z0-9_+/-]{48}(?![A-Za-z0-9+_=-])")
_TON_RAW_CANDIDATE = re.compile(
    r"(?<![0-9A-Za-z-])(?<![0-9]:)(0|-1):([0-9a-fA-F]{64})(?![0-9A-Za-z])"
)
# Mainnet flags: bounceable (EQ/Ef...) and non-bounceable (UQ/Uf...). Testnet ones (0x80 set,
# kQ/0Q...) are no token anyone can buy: not reported.
_TON_FLAGS = (0x11, 0x51)
_TON_WORKCHAINS = (0x00, 0xFF)  # the basechain and the masterchain (-1)
# A Move coin type: an account address, a module, a struct (Sui and Aptos write them alike).
_MOVE_COIN_TYPE = re.compile(
    r"(?<![0-9A-Za-z])0x([0-9a-fA-F]{64})::([A-Za-z][A-Za-z0-9_]*)::([A-Za-z_][A-Za-z0-9_]*)"
    r"(?![A-Za-z0-9_])"
)
# Words that say a text is about Aptos, or about Sui (explorers, tickers, the names).
_APTOS_CONTEXT = re.compile(r"\baptos\b|aptoscan|aptoslabs|\$apt\b", re.IGNORECASE)
_SUI_CONTEXT = re.compile(r"\bsui\b|suiscan|suivision|\$sui\b", re.IGNORECASE)

# Characters OCR reads in place of a hex digit, and what they may stand for.
_EVM_BODY_CONFUSIONS = {"1": "f", "5": "b"}


# Every form is at least 32 characters without a space (Solana's shortest); most texts have
# no such run, and one search tells (the posts agent looks at every post's text).
_LONG_RUN = re.compile(r"\S{32}")

# The work one text may cost, whatever it holds. Why: a post's text is up to 100,000
# characters, and a repair tries up to ~100 checksums; a text of 2,000 TON look-alikes made of
# confusable characters cost 3 s, on the agent every other post waits for. So each network's
# finder looks at its first ``MAX_CANDIDATES`` candidates, and a text gets ``MAX_REPAIRS``
# repairs in all (a real image has an address or two, rarely a confused one). What is past
# them is not reported: never a wrong address, at most a missed one in a text that is not a
# post's or an image's.
MAX_CANDIDATES = 128
MAX_REPAIRS = 4


class _Budget:
    """What one text may still spend: its repairs left."""

    def __init__(self) -> None:
        self.repairs = MAX_REPAIRS

    def repair(self) -> bool:
        """Spend one repair; False when the text has none left."""
        if self.repairs <= 0:
            return False
        self.repairs -= 1
        return True


def extract_addresses(text: str) -> list[BuyCa]:
    """Return every contract address in ``text``, de-duplicated, in order of appearance."""
    if not _LONG_RUN.search(text):
        return []
    clean = text.translate(_HOMOGLYPHS)
    budget = _Budget()
    # The longer, checksummed forms first: a part of one is never reported as another.
    claimed: list[tuple[int, int]] = []
    found: list[tuple[int, BuyCa]] = []
    for finder in (_find_move, _find_ton, _find_evm, _find_tron, _find_solana):
        for start, end, ca in finder(clean, budget):
            if any(start < taken_end and taken_start < end for taken_start, taken_end in claimed):
                continue
            claimed.append((start, end))
            found.append((start, ca))
    found.sort(key=lambda pair: pair[0])
    seen: set[tuple[str, str]] = set()
    result: list[BuyCa] = []
    for _, ca in found:
        if ca.identity not in seen:
            seen.add(ca.identity)
            result.append(ca)
    return result


def _candidates(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Return the first ``MAX_CANDIDATES`` matches of a network's pattern in ``text``."""
    return itertools.islice(pattern.finditer(text), MAX_CANDIDATES)


# --- EVM ---------------------------------------------------------------------------------


# Why cached: an address that trends is posted again and again; 4,096 bodies are ~1 MB.
@functools.lru_cache(maxsize=4096)
def eip55_checksum(hex40: str) -> str:
    """Return the EIP-55 mixed-case form of a 40-hex-digit address body."""
    lower = hex40.lower()
    digest = keccak.new(digest_bits=256, data=lower.encode()).digest()
    # EIP-55 uses the digest's first 40 nibbles, one per character: a letter is upper case
    # when its nibble is 8 or more, i.e. the nibble's high bit (bit 159 - 4i of 160) is set.
    bits = int.from_bytes(digest[:20], "big")
    return "".join(
        c.upper() if c > "9" and bits >> (159 - 4 * i) & 1 else c for i, c in enumerate(lower)
    )


def is_valid_evm(address: str) -> bool:
    """Tell whether ``address`` is 0x + 40 hex and, when mixed-case, passes EIP-55."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
        return False
    body = address[2:]
    if body == body.lower() or body == body.upper():
        return True
    return eip55_checksum(body) == body


def _find_evm(text: str, budget: _Budget) -> Iterator[tuple[int, int, BuyCa]]:
    named = None  # the chains the whole text names, worked out once
    for match in _candidates(_EVM_CANDIDATE, text):
        address = _repair_evm(match.group(2), budget)
        if address is None:
            continue
        chain = _chain_in_payment_uri(text, match) or _chain_in_link(text, match.start())
        if chain is None:
            named = _chains_named(text) if named is None else named
            chain = named[0] if len(named) == 1 else None
        yield match.start(), match.end(), BuyCa(network="evm", address=address, chain=chain)


# Where an EVM address's chain is said: its explorer, or the chain in a DEX screener's link
# ("dexscreener.com/base/0x..."), or words the text uses for the chain. Why words are narrow:
# "base" and "eth" are everyday words and units; "on Base" and "BSC" are not.
_CHAINS: dict[Chain, tuple[str, str]] = {
    # Not "ethereum:" (a payment URI's scheme, whatever its chain: _chain_in_payment_uri).
    "ethereum": ("etherscan.io", r"\bethereum\b(?!:)|\berc-?20\b|\bon eth\b|\beth mainnet\b"),
    "base": ("basescan.org", r"\bon base\b|\bbase (chain|network|mainnet)\b|#base\b"),
    "bsc": ("bscscan.com", r"\bbsc\b|\bbnb (smart )?chain\b|\bbep-?20\b|\bon bnb\b"),
    "arbitrum": ("arbiscan.io", r"\barbitrum\b"),
    "polygon": ("polygonscan.com", r"\bpolygon\b"),
    "avalanche": ("snowtrace.io", r"\bavalanche\b|\bavax c-chain\b"),
    "optimism": ("optimistic.etherscan.io", r"\boptimism\b"),
}
_CHAIN_WORDS = {chain: re.compile(words, re.IGNORECASE) for chain, (_, words) in _CHAINS.items()}
# What each chain's words hold, one of these at least: a text holding none (most) names no
# chain in words, told without a search per chain (7 of them cost 12 µs a post).
_CHAIN_WORD_PARTS = (
    "eth",
    "erc",
    "base",
    "bsc",
    "bnb",
    "bep",
    "arbitrum",
    "polygon",
    "ava",
    "optimism",
)
# A DEX screener's or tracker's path names the chain before the address.
_CHAIN_PATH = re.compile(r"/(ethereum|base|bsc|arbitrum|polygon|avalanche|optimism)/[^/\s]*$")


# EIP-155 chain ids, as an EIP-681 payment URI writes them ("ethereum:0x...@8453").
_CHAIN_IDS: dict[str, Chain] = {
    "1": "ethereum",
    "8453": "base",
    "56": "bsc",
    "42161": "arbitrum",
    "137": "polygon",
    "43114": "avalanche",
    "10": "optimism",
}
_CHAIN_ID_AFTER = re.compile(r"@(\d{1,12})")


def _chain_in_payment_uri(text: str, match: re.Match[str]) -> Chain | None:
    """Return the chain of an EIP-681 URI the address is in: its ``@chain id``, else mainnet."""
    before = text[max(0, match.start() - 13) : match.start()].lower()
    if not before.endswith(("ethereum:", "ethereum:pay-")):
        return None
    chain_id = _CHAIN_ID_AFTER.match(text, match.end())
    if chain_id is None:
        return "ethereum"  # EIP-681: no chain id is the main network
    return _CHAIN_IDS.get(chain_id.group(1))


def _chain_in_link(text: str, start: int) -> Chain | None:
    """Return the chain a link the address is part of names (its explorer or its path)."""
    token_start = max(text.rfind(" ", 0, start), text.rfind("\n", 0, start)) + 1
    link = text[token_start:start].lower()
    if "/" not in link:
        return None
    # Optimism's explorer is a subdomain of Ethereum's: the longer host first.
    for chain, (host, _) in sorted(_CHAINS.items(), key=lambda item: -len(item[1][0])):
        if host in link:
            return chain
    path = _CHAIN_PATH.search(link)
    return cast(Chain, path.group(1)) if path else None


def _chains_named(text: str) -> list[Chain]:
    """Return the chains a text names in words, or by an explorer's host."""
    lowered = text.lower()
    folded = text.casefold()  # as the words' IGNORECASE matches (a long s is an s)
    words = any(part in folded for part in _CHAIN_WORD_PARTS)
    return [
        chain
        for chain, (host, _) in _CHAINS.items()
        if (words and _CHAIN_WORDS[chain].search(text)) or host in lowered
    ]


def _repair_evm(body: str, budget: _Budget) -> str | None:
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
    if not budget.repair():
        return None
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


def _find_solana(text: str, budget: _Budget) -> Iterator[tuple[int, int, BuyCa]]:
    for match in _candidates(_SOLANA_CANDIDATE, text):
        address = match.group(0)
        if is_valid_tron(address):
            continue  # reported as Tron
        if _inside_encoded_data(text, match.start(), match.end()):
            continue
        if is_valid_solana(address):
            yield match.start(), match.end(), BuyCa(network="solana", address=address)


# A link, with or without its scheme: where "/" and "=" may touch an address.
_LINK = re.compile(r"[a-z][a-z0-9+.-]*://|(www\.)?[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}/", re.I)
# A swap pair in a link: ".../swap/SOL-<address>".
_TICKER_PAIR = re.compile(r"/swap/[A-Z0-9]{2,10}-$")
# Query parameters that hold an address (a token's mint, a contract); not "token=", which is
# as often a credential.
_ADDRESS_PARAMETER = re.compile(
    r"[?&](\w*(mint|address|addr|contract|currency|coin)|ca|ct)$", re.IGNORECASE
)
# A line of an encoded block (base64 wrapped at 64 or 76): long, and no space in it.
_ENCODED_LINE = re.compile(r"[A-Za-z0-9+/=_-]{60,}")


def _inside_encoded_data(text: str, start: int, end: int) -> bool:
    """Tell whether ``text[start:end]`` is a run of base64 (a blob, a JWT, a hash), not a key.

    Why: any 43-44 base58 characters decode to 32 bytes, and base64 is base58 plus ``0OIl+/``
    (or ``-_``): its runs between those characters were reported as Solana addresses (12 in
    1,700 blobs, 26 JWTs, 18 padded transaction hashes; harness/address_corpus.py). What
    touches a run tells: padding or ``+`` after it, ``-`` or ``_`` either side, a dot joining
    it to more (a JWT), and ``/`` or ``=`` outside what a link holds an address in (a path
    segment, ``jup.ag/swap/SOL-<address>``, a query parameter named for one).
    """
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    token_start = max(text.rfind(" ", 0, start), text.rfind("\n", 0, start)) + 1
    link = _LINK.match(text, token_start) is not None
    if link and before == "-" and _TICKER_PAIR.search(text, token_start, start):
        before = "/"  # a swap pair's second half: the address is the segment
    if after in "=+" or before == "+" or "-" in (before, after) or "_" in (before, after):
        return True
    # A JWT's segments are joined by dots: "…Xy.<run>" or "<run>.Xy…", no space between.
    if before == "." and start >= 2 and (text[start - 2].isalnum() or text[start - 2] in "-_"):
        return True
    if after == "." and end + 1 < len(text) and text[end + 1].isalnum():
        return True
    if before == "/" and link:
        # A path segment after a word ("/solana/", "/token/", "/coin/") or right after the
        # host ("pump.fun/"): how links carry an address. After "/s/" or "/media/x/", an id.
        previous = text[text.rfind("/", token_start, start - 1) + 1 : start - 1]
        return not ("." in previous or (previous.isalpha() and len(previous) >= 2))
    if "/" in (before, after):
        return not link
    if before == "=" and link:
        return _ADDRESS_PARAMETER.search(text, token_start, start - 1) is None
        # The last (or first) line of a wrapped base64 block: a run that starts its line after an
    # encoded line, or ends its line before one, belongs to that block.
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    if not text[line_start:start].strip() and line_start:
        previous = text[text.rfind("\n", 0, line_start - 1) + 1 : line_start - 1]
        if _ENCODED_LINE.fullmatch(previous.strip()):
            return True
    if not text[end:line_end].strip() and line_end < len(text):
        following_end = text.find("\n", line_end + 1)
        following = text[line_end + 1 : len(text) if following_end < 0 else following_end]
        if _ENCODED_LINE.fullmatch(following.strip()):
            return True
    return False


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


def _find_tron(text: str, budget: _Budget) -> Iterator[tuple[int, int, BuyCa]]:
    for match in _candidates(_TRON_CANDIDATE, text):
        if is_valid_tron(match.group(0)):
            yield match.start(), match.end(), BuyCa(network="tron", address=match.group(0))


# --- TON ---------------------------------------------------------------------------------


def crc16_xmodem(data: bytes) -> int:
    """Return the CRC-16/XMODEM of ``data`` (TON's address checksum)."""
    # CRC-CCITT from 0, in C: the same as the bitwise loop (tests/unit/test_addresses.py).
    return binascii.crc_hqx(data, 0)


def is_valid_ton(address: str) -> bool:
    """Tell whether ``address`` is a mainnet TON user-friendly address whose CRC16 holds."""
    if len(address) != 48:
        return False
    standard = address.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) != 36 or raw[0] not in _TON_FLAGS or raw[1] not in _TON_WORKCHAINS:
        return False
    return crc16_xmodem(raw[:34]) == int.from_bytes(raw[34:], "big")


# Characters OCR confuses in base64 (sans fonts draw I and l alike), and what each may be.
_TON_CONFUSIONS = {"I": "l1", "l": "I1", "1": "Il", "O": "0", "0": "O"}


def _repair_ton(address: str) -> str | None:
    """Return the one address a single confused character away whose CRC16 holds, or None.

    As for EVM under EIP-55: one substitution among look-alikes, and only when exactly one
    candidate validates (a wrong one passes a CRC16 about once in 65,536).
    """
    repaired = {
        candidate
        for i, ch in enumerate(address)
        for alt in _TON_CONFUSIONS.get(ch, "")
        if is_valid_ton(candidate := address[:i] + alt + address[i + 1 :])
    }
    return repaired.pop() if len(repaired) == 1 else None


def _find_ton(text: str, budget: _Budget) -> Iterator[tuple[int, int, BuyCa]]:
    for match in _candidates(_TON_CANDIDATE, text):
        address = match.group(0)
        # One alphabet or the other, as a wallet writes it: never both in one address.
        if ("-" in address or "_" in address) and ("+" in address or "/" in address):
            continue
        repaired: str | None = address
        if not is_valid_ton(address):
            repaired = _repair_ton(address) if budget.repair() else None
        if repaired is not None:
            yield match.start(), match.end(), BuyCa(network="ton", address=repaired)
    for match in _candidates(_TON_RAW_CANDIDATE, text):
        address = f"{match.group(1)}:{match.group(2).lower()}"
        yield match.start(), match.end(), BuyCa(network="ton", address=address)


# --- Move coin types (Sui, Aptos) ----------------------------------------------------------


def move_network(text: str) -> Literal["sui", "aptos"]:
    """Return which Move chain a text's coin types are on: Aptos only when it says Aptos alone.

    Both chains write a coin type as ``0x<address>::module::NAME``. Sui is where nearly all
    memecoins of this form launch, so without a word for Aptos (or with words for both) it is
    Sui.
    """
    return "aptos" if _APTOS_CONTEXT.search(text) and not _SUI_CONTEXT.search(text) else "sui"


def _find_move(text: str, budget: _Budget) -> Iterator[tuple[int, int, BuyCa]]:
    network: Literal["sui", "aptos"] | None = None
    for match in _candidates(_MOVE_COIN_TYPE, text):
        network = network or move_network(text)
        address = f"0x{match.group(1).lower()}::{match.group(2)}::{match.group(3)}"
        yield match.start(), match.end(), BuyCa(network=network, address=address)
