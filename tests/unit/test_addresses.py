"""buy_ca extraction: real checksummed addresses, OCR-confused variants, ordinary text."""

from __future__ import annotations

import pytest

from app.ocr.addresses import eip55_checksum, extract_addresses, is_valid_evm

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
