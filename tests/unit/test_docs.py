"""README.md documents every setting and the two commands CI relies on."""

from __future__ import annotations

from pathlib import Path

from app.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [
        f"OCRSTREAM_{name.upper()}"
        for name in Settings.model_fields
        if f"`OCRSTREAM_{name.upper()}`" not in README
    ]
    assert not missing


def test_readme_starts_with_the_run_and_test_commands() -> None:
    first_block = README.split("```")[1]
    assert "make run" in first_block
    assert "make test" in first_block
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci
