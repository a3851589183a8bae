# The two commands of README.md: `make run` and `make test`. Everything else is what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test check lint types docs screenshots clean

# A virtualenv with the project and its dev tools; redone when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	scripts/ensure-system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

## Run the worker (stream agents + web on :6066); starts a local Kafka if OCRSTREAM_BROKER is unset.
run: setup
	$(PY) -m app run

## Lint, type-check and run every test (integration tests start their own Kafka; Chromium runs
## the browser tests, installed here and never by `make run`).
test: setup lint types
	scripts/ensure-system-deps --tests
	$(PY) -m pytest

## Day-to-day: lint, types and the tests that need neither Kafka nor the OCR engine (~1 min).
check: setup lint types
	$(PY) -m pytest -q -m "not integration and not cluster and not ocr"

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

types: setup
	$(PY) -m mypy

## Regenerate what the docs take from the code (docs/settings.md's tables, the ACLs of operations.md).
docs: setup
	$(PY) -m app.cli.docs

## The dashboard's screenshots in docs/img/, taken by its test against a real worker.
screenshots: setup
	OCRSTREAM_SCREENSHOT_DIR=$(CURDIR)/docs/img $(PY) -m pytest -q tests/integration/test_dashboard.py
	# Why: a 256-colour palette keeps each ~150 KB instead of ~470 KB in every clone.
	$(PY) -c "from pathlib import Path; from PIL import Image; [Image.open(p).convert('RGB').quantize(256).save(p, optimize=True) for p in Path('docs/img').glob('*.png')]"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
