"""buy_ca extraction: real checksummed addresses, OCR-confused variants, ordinary text."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ocr.addresses import crc16_xmodem, eip55_checksum, extract_addresses, is_valid_evm
from harness.address_corpus import LAYOUTS, an_address, not_an_address, ton_address

UNISWAP_ROUTER = "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"
PEPE = "0x6982508145454Ce325dDbE47a25d4ec3d2311933"
WIF = "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm"
WSOL = "So11111111111111111111111111111111111111112"
USDT_TRON = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"


def _found(text: str) -> list[tuple[str, str]]:
    return [(ca.network, ca.address) for ca in extract_addresses(text)]


def test_eip55_reference_vectors() -> None:
    # From the EIP-55 specification.
    for address in [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ]:
        assert eip55_checksum(address[2:].lower()) == address[2:]
        assert is_valid_evm(address)


def test_each_network_is_found_in_order_and_deduplicated() -> None:
    text = f"CA {PEPE} then {WIF}, tron {USDT_TRON}, again {PEPE.lower()} and {WIF}"
    assert _found(text) == [("evm", PEPE), ("solana", WIF), ("tron", USDT_TRON)]


def test_single_case_evm_is_accepted_as_read() -> None:
    assert _found(PEPE.lower()) == [("evm", PEPE.lower())]


@pytest.mark.parametrize(
    "confused",
    [
        "O" + UNISWAP_ROUTER[1:],  # 0 read as O
        "0X" + UNISWAP_ROUTER[2:],  # x read as X
        UNISWAP_ROUTER[1:],  # the leading 0 dropped
        UNISWAP_ROUTER.replace("cF5", "c15"),  # f read as 1; EIP-55 pins it back
        UNISWAP_ROUTER.replace("dAcb", "dACb"),  # one letter in the wrong case
        UNISWAP_ROUTER.replace("c", "с"),  # Cyrillic с for c
    ],
)
def test_repairable_ocr_confusions_are_repaired_under_the_checksum(confused: str) -> None:
    assert _found(f"CA: {confused}") == [("evm", UNISWAP_ROUTER)]


def test_a_mixed_case_address_failing_eip55_is_not_invented() -> None:
    two_flips = UNISWAP_ROUTER.replace("B4cF", "b4CF")  # two letters in the wrong case
    assert _found(two_flips) == []
    wrong_digit = UNISWAP_ROUTER.replace("5630", "5631")  # a misread digit: checksum fails
    assert _found(wrong_digit) == []
    # O inside an all-lowercase body has no checksum to confirm a repair: refused.
    assert _found("0x" + "7a250d5630b4cf539739df2c5dacb4c659f2488O") == []


def test_solana_and_tron_need_their_decoding_to_validate() -> None:
    assert _found(f"mint {WSOL}") == [("solana", WSOL)]
    assert _found(f"mint {WIF}x") == []  # 45 characters: too long for 32 bytes
    assert _found(USDT_TRON[:-1] + "u") == []  # checksum fails: not Tron, and not Solana length


@pytest.mark.parametrize(
    "text",
    [
        "The quick brown fox jumps over the lazy dog near the riverbank today.",
        "Internationalization and counterrevolutionaries are long words.",
        "Pseudopseudohypoparathyroidism Floccinaucinihilipilification",
        "https://turbotoken.finance/claim?ref=abcdefABCDEF1234567890abcdefABCDEF",
        "tx 0x" + "ab" * 32,  # a 64-hex transaction hash is not an address
        "0x123 short, 0x" + "g" * 40,
    ],
)
def test_ordinary_text_yields_nothing(text: str) -> None:
    assert _found(text) == []


# TON: a jetton master with a valid CRC16 (the example of issue 26), bounceable and not.
TON = "EQB2KyiCKrYpF5bbJeLVRNfoCaNIOyYnp0KAnnrm9u5EQaUf"
SUI_FUD = "0x76cb819b01abed502bee8a702b4c2d547532c12f25001c9dea795a5e631c26f1::fud::FUD"


def test_ton_addresses_are_found_by_their_crc16_and_the_raw_form_as_written() -> None:
    assert _found(f"jetton {TON} is live") == [("ton", TON)]
    broken = TON[:-1] + ("g" if TON[-1] != "g" else "h")
    assert _found(f"jetton {broken}") == []  # one character off: the CRC16 fails
    non_bounceable = ton_address(random.Random(1), bounceable=False)
    assert non_bounceable.startswith("UQ") and _found(non_bounceable) == [("ton", non_bounceable)]
    raw = "0:" + "83dfd552e63729b472fcbcc8c45ebcc6691702558b68ec7527e1ba403a0f31a8"
    assert _found(f"CA:{raw.upper()}") == [("ton", raw)]  # hex is case-free: lowercase
    assert _found(f"tonviewer.com/{TON}") == [("ton", TON)]


def test_one_ton_character_ocr_confused_is_repaired_only_under_the_crc16() -> None:
    read = "EQBkl-4hmwHdkvGfSVT0_qlO2RgjdYgrlA2q2yPP-Rk_PvSe"  # a sans "I" read as "l"
    assert _found(read) == [("ton", "EQBkl-4hmwHdkvGfSVT0_qlO2RgjdYgrIA2q2yPP-Rk_PvSe")]
    # Two confusions, or a character that is no look-alike: not guessed.
    assert _found(read.replace("Rk_", "Rl_")) == []
    assert _found(TON[:10] + "Z" + TON[11:]) == []


def test_a_testnet_ton_address_is_no_token_anyone_can_buy() -> None:
    body = bytes([0x91, 0]) + bytes(range(32))  # flags with the testnet bit
    testnet = base64.urlsafe_b64encode(body + crc16_xmodem(body).to_bytes(2, "big")).decode()
    assert testnet.startswith("kQ") and _found(testnet) == []


def test_move_coin_types_are_sui_unless_the_text_says_aptos_alone() -> None:
    assert _found(f"CA: {SUI_FUD}") == [("sui", SUI_FUD)]
    assert _found(f"on Aptos: {SUI_FUD}") == [("aptos", SUI_FUD)]
    assert _found(f"bridged from aptos to sui: {SUI_FUD}") == [("sui", SUI_FUD)]
    upper = SUI_FUD.replace("0x76cb", "0x76CB")
    assert _found(upper) == [("sui", SUI_FUD)]  # hex is case-free: one form, lowercase
    # A bare 64-hex string is as often a transaction or block hash: never reported.
    assert _found(SUI_FUD.split("::")[0]) == []
    assert _found("digest " + "ab" * 32) == []


def test_text_that_holds_no_address_yields_none() -> None:
    # Transaction hashes of each chain, hex dumps, base64 blobs, JWTs, links with tokens:
    # bench/addresses.py measures 300,000 of them; here a fixed sample of 6,000.
    rng = random.Random(26)
    wrong = [
        (kind, text[:120], found)
        for kind, text in (not_an_address(rng) for _ in range(6000))
        if (found := _found(text))
    ]
    assert wrong == []


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32), layout=st.sampled_from(LAYOUTS))
def test_every_network_is_found_exactly_wherever_a_post_puts_it(seed: int, layout: str) -> None:
    network, address = an_address(random.Random(seed))
    if "SOL-" in layout and network != "solana":
        return  # a Solana swap link
    assert _found(layout.format(address)) == [(network, address)]


def _chains(text: str) -> list[str | None]:
    return [ca.chain for ca in extract_addresses(text)]


def test_an_evm_address_gets_the_chain_its_link_or_its_text_names_and_none_otherwise() -> None:
    assert _chains(f"CA {PEPE}") == [None]  # today's shape: no `chain` at all
    assert "chain" not in extract_addresses(PEPE)[0].model_dump_json()
    assert _chains(f"https://dexscreener.com/base/{PEPE}") == ["base"]
    assert _chains(f"bscscan.com/token/{PEPE}") == ["bsc"]
    assert _chains(f"optimistic.etherscan.io/token/{PEPE}") == ["optimism"]
    assert _chains(f"now live on Base! CA: {PEPE}") == ["base"]
    assert _chains(f"{PEPE} BEP20, LP locked") == ["bsc"]
    # Everyday words are no chain ("base price", a price in ETH); two chains named: unknown.
    assert _chains(f"base price 0.1 eth {PEPE}") == [None]
    assert _chains(f"on Base and on Arbitrum: {PEPE}") == [None]
    # A payment URI (EIP-681) by its chain id; none is the main network; "ethereum:" no word.
    assert _chains(f"ethereum:{PEPE}@8453?value=1e17") == ["base"]
    assert _chains(f"ethereum:{PEPE}") == ["ethereum"]
    assert _chains(f"ethereum:{PEPE}@99999") == [None]
    # A link decides for its own address even where the text names others.
    text = f"arbitrum soon. https://dexscreener.com/base/{PEPE} and {UNISWAP_ROUTER}"
    assert _chains(text) == ["base", "arbitrum"]


def _bitwise_crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


@given(st.binary(max_size=64))
def test_crc16_is_xmodem_bit_for_bit(data: bytes) -> None:
    assert crc16_xmodem(data) == _bitwise_crc16(data)
    assert crc16_xmodem(b"123456789") == 0x31C3  # the CRC catalogue's check value


def test_a_hostile_text_costs_a_bounded_number_of_checksums(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thousands of look-alikes, each one repair away, cost what a few real addresses do.

    A text of 2,000 TON look-alikes made of confusable characters took 3 s before the bound,
    on the posts agent every other post waits for.
    """
    from app.ocr import addresses

    checks = {"ton": 0, "evm": 0}
    is_valid_ton, checksum = addresses.is_valid_ton, addresses.eip55_checksum.__wrapped__

    def counted_ton(address: str) -> bool:
        checks["ton"] += 1
        return is_valid_ton(address)

    def counted_evm(body: str) -> str:
        checks["evm"] += 1
        return checksum(body)

    monkeypatch.setattr(addresses, "is_valid_ton", counted_ton)
    monkeypatch.setattr(addresses, "eip55_checksum", counted_evm)
    rng = random.Random(7)
    tons = ["EQA" + "".join(rng.choice("Il1O0") for _ in range(45)) for _ in range(2000)]
    evms = ["0xA" + "".join(rng.choice("15") for _ in range(38)) + "b" for _ in range(2000)]
    extract_addresses(" ".join(tons + evms))
    # Each network looks at its first 128 candidates; 4 repairs in all, each ~100 checks.
    repairs = addresses.MAX_REPAIRS * 2 * 48
    assert checks["ton"] <= addresses.MAX_CANDIDATES + repairs
    assert checks["evm"] <= addresses.MAX_CANDIDATES + repairs
    # A real address with them is still found (it comes first, as an image's would).
    assert _found(f"{PEPE} " + " ".join(tons[:300])) == [("evm", PEPE)]


_CHAIN_TALK = ["on Base", "BSC", "bnb chain", "BEP-20", "ERC20", "on ETH", "eth mainnet",
               "Ethereum", "ethereum:", "Arbitrum", "polygon", "AVAX C-Chain", "Avalanche",
               "optimism", "#base", "basement", "ethos", "bscscan.com", "OPTIMISM", "on baſe",
               "ok", "gm", "\n", "/", "-"]  # fmt: skip


@given(st.lists(st.sampled_from(_CHAIN_TALK), max_size=8).map(" ".join))
def test_the_chains_a_text_names_are_those_each_chains_words_find(text: str) -> None:
    """The quick test for no chain words at all never hides a chain its words name."""
    from app.ocr import addresses

    lowered = text.lower()
    by_each = [
        chain
        for chain, (host, _) in addresses._CHAINS.items()
        if addresses._CHAIN_WORDS[chain].search(text) or host in lowered
    ]
    assert addresses._chains_named(text) == by_each
