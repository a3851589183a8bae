"""`python -m app ocr`: what a user runs on files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.workers import REPO
from tests.conftest import DATA

# The real OCR engine: seconds per test (`make check` leaves these out).
pytestmark = pytest.mark.ocr


def test_json_output_is_one_object_per_image_and_errors_are_reported() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "ocr", "--json", str(DATA / "s10_sol.jpg"), "missing.png"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1  # one input failed
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert set(first) == {"file", "text", "lines", "buy_ca", "elapsed_ms"}
    assert first["file"] == str(DATA / "s10_sol.jpg")
    assert first["lines"][0] == {
        "text": "$BONK is live on Solana",
        "score": first["lines"][0]["score"],
    }
    assert first["buy_ca"] == [
        {"network": "solana", "address": "DKwfFc2KA3i22DmxzLQzqi9weodLJXDxCtDpYaS9QJqc"}
    ]
    assert first["elapsed_ms"] > 0
    assert second["file"] == "missing.png" and "No such file" in second["error"]


def test_an_address_only_in_a_qr_code_is_given_as_the_pipeline_gives_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "ocr", "--json", str(DATA / "qr_promo.png")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    record = json.loads(done.stdout)
    # The address is printed nowhere: only the code's payment URI holds it.
    assert "0x7a250d" not in record["text"].lower()
    assert record["buy_ca"] == [
        {
            "network": "evm",
            "address": "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D",
            "chain": "ethereum",
        }
    ]
    assert [code["kind"] for code in record["qr"]] == ["uri", "link"]
