"""README.md documents every setting, every error kind, and the two commands CI relies on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

from app.fetch import FetchError
from app.ocr.images import ImageError
from app.ocr.pool import OcrPoolError
from app.settings import Settings
from models.events import ErrorKind

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


def test_the_documented_error_kinds_are_the_codes() -> None:
    section = README.split("### `ocr_error`", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^- `([a-z_]+)`: ", section, flags=re.MULTILINE))
    assert documented == set(get_args(ErrorKind))


def test_every_failure_class_has_a_documented_kind() -> None:
    kinds = set(get_args(ErrorKind))
    classes: list[Any] = [FetchError, ImageError, OcrPoolError]
    seen = set()
    while classes:
        cls = classes.pop()
        seen.add(cls.kind)
        classes.extend(cls.__subclasses__())
    assert seen <= kinds
    assert kinds - seen == {"internal_error"}  # the agent's catch-all, not an exception class
