"""The documentation says what the code does: settings, error kinds, commands, links."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, get_args

from app.cli.docs import with_settings_table
from app.fetch import FetchError
from app.ocr.images import ImageError
from app.ocr.pool import OcrPoolError
from app.settings import CONCERNS, Settings
from models.events import ErrorKind

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"


def test_readme_starts_with_the_run_and_test_commands() -> None:
    first_block = README.split("```")[1]
    assert "make run" in first_block
    assert "make test" in first_block
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_readme_is_read_in_five_minutes() -> None:
    assert len(README.splitlines()) <= 200


def test_the_settings_table_is_generated_from_the_code() -> None:
    document = (DOCS / "settings.md").read_text()
    assert document == with_settings_table(document), "run `make docs`"
    listed = set(re.findall(r"^\| `OCRSTREAM_([A-Z0-9_]+)` \|", document, flags=re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}


def test_each_setting_belongs_to_exactly_one_concern() -> None:
    owners = Counter(name for concern in CONCERNS for name in concern.model_fields)
    assert set(owners) == set(Settings.model_fields)
    assert max(owners.values()) == 1


def test_the_documented_error_kinds_are_the_codes() -> None:
    records = (DOCS / "records.md").read_text()
    section = records.split("### `ocr_error`", 1)[1].split("\n### ", 1)[0]
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
    # The agent's own kinds, not exception classes: its catch-all, and a result over its
    # topic's record limit.
    assert kinds - seen == {"internal_error", "result_too_large"}


def test_every_link_between_documents_leads_somewhere() -> None:
    broken = []
    for document in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text()):
            if "://" in target:
                continue
            if not (document.parent / target).exists():
                broken.append(f"{document.relative_to(ROOT)} -> {target}")
    assert not broken


def test_every_path_the_documents_name_exists() -> None:
    # Before: docs/development.md named `bench/make_images.py`, which never existed.
    top = "app|agents|models|tests|bench|docs|scripts|kafka|\\.ci"
    missing = []
    for document in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        for named in re.findall(rf"`((?:{top})/[^`\s]*)`", document.read_text()):
            path = named.split(":")[0]  # `app/fetch.py:42` names a line of a file
            if any(mark in path for mark in "*<{") or (ROOT / path).exists():
                continue  # a pattern or a placeholder, not a path
            missing.append(f"{document.relative_to(ROOT)} -> {named}")
    assert not missing


def test_make_run_installs_what_running_needs_and_only_make_test_chromium() -> None:
    def planned(target: str) -> str:
        # A virtualenv that is not there: make plans the whole setup too.
        done = subprocess.run(
            ["make", "-n", target, "VENV=/nonexistent/venv"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout

    run, test = planned("run"), planned("test")
    assert "scripts/ensure-system-deps\n" in run and "--tests" not in run
    assert "scripts/ensure-system-deps --tests" in test
    script = (ROOT / "scripts" / "ensure-system-deps").read_text()
    assert 'if [ "${1:-}" = --tests ]; then\n  command -v chromium' in script


def test_nothing_shipped_points_outside_the_repository() -> None:
    # A clone has only the repository: no path may lead to a sibling directory.
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = [
        name
        for name in files
        if not name.startswith("tests/")
        and (ROOT / name).is_file()
        and (ROOT / name).suffix in {".py", ".md", ".toml", ".yml", ".sh", ""}
        and "../shared" in (ROOT / name).read_text(errors="replace")
    ]
    assert not outside
