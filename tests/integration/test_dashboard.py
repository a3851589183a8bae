"""The live status page, rendered by a real headless Chromium while posts flow."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.kafka.local import LocalKafka
from app.keys.admin import admin_over_kafka
from tests.support import consume, post, produce, unique_settings

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _render(url: str, profile: Path, screenshot: Path | None = None) -> str:
    """Load the page in headless Chromium, let its script poll for 3 s, return the DOM."""
    assert CHROMIUM is not None
    flags = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=3000",
    ]  # fmt: skip
    if screenshot is not None:
        subprocess.run(
            [*flags, f"--screenshot={screenshot}", "--window-size=1200,900", url],
            capture_output=True,
            timeout=60,
            check=True,
        )
    done = subprocess.run(
        [*flags, "--dump-dom", url], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def _shown(dom: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
    assert match, f"#{element_id} not on the page"
    return match.group(1)


def _total(dom: str, counter: str) -> int:
    match = re.search(rf"<td>{re.escape(counter)}</td><td>(\d+)</td>", dom)
    return int(match.group(1)) if match else 0


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium not installed (make test installs it as root; CI always has it)",
)
async def test_status_page_numbers_change_as_posts_flow(
    kafka: LocalKafka, image_host: str, start_worker: Any, tmp_path: Path
) -> None:
    settings = unique_settings(kafka)
    start_worker(settings)
    assert (await admin_over_kafka(settings).create("dashboard")).record is not None
    url = f"http://127.0.0.1:{settings.web_port}/dashboard"

    before = _render(url, tmp_path / "profile")
    assert _shown(before, "state") == "live"
    assert _shown(before, "keys") == "1"
    assert _total(before, "posts") == 0

    names = ["s10_sol.jpg", "s02_sol.png", "s30_promo.png"]
    posts = [post(f"d{i}", "dash", [f"{image_host}/{name}"]) for i, name in enumerate(names)]
    posts.append(b"not json")
    await produce(kafka.bootstrap, settings.posts_topic, posts)
    assert len(await consume(kafka.bootstrap, settings.ocr_result_topic, count=3)) == 3

    after = _render(url, tmp_path / "profile", screenshot=tmp_path / "dashboard.png")
    assert _total(after, "posts") == 4
    assert _total(after, "ocr_results") == 3
    assert _shown(after, "ocr-n") == "3"
    assert float(_shown(after, "ocr-p50")) > 0
    assert "posts: invalid post" in after  # the recent errors list
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
