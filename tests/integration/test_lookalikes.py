"""A lookalike image never hands a victim's post the attacker's address, on the real broker.

The attacker makes an image like the victim's (tests/variants.py: `attacks`): the victim's
picture with the attacker's address hidden above its own in a colour of nearly the
background's grey, or the same template printing the attacker's address in such a colour. It
sends it first, through POST /ocr with a key of its own, or in a post. Before: the
near-duplicate check compared grey thumbnails only, and /ocr fed the index the pipeline reuses,
so the victim's post was delivered with the attacker's address (first). Now a copy is reused
only when its colour matches too and each line that may hold an address reads the same in it;
and /ocr answers from a cache of the caller's own.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from app.kafka.local import LocalKafka
from harness.loopback import serve_on_loopback
from harness.records import consume, post, produce
from harness.variants import Attack, attacks
from harness.workers import unique_settings

pytestmark = pytest.mark.integration

ADMIN = "lookalike-admin"


def _attack(kind: str, font: str) -> Attack:
    """The attack of ``kind`` on the yellow template (light blue and pink on yellow), in
    ``font`` if this machine has it (in which today's main gave the victim the attacker's
    address), else in the first font it has."""
    chosen = [a for a in attacks() if a.label.startswith("yellow/") and a.label.endswith(kind)]
    return next((a for a in chosen if f"/{font}/" in a.label), chosen[0])


HIDDEN = _attack("inked, a faint second address", "DejaVuSansMono.ttf")
SWAPPED = _attack("another faint address", "DejaVuSans-Bold.ttf")


@pytest.fixture(scope="module")
async def lookalike_host() -> AsyncIterator[str]:
    """Serve each attack's images: /<attack>/attacker.png and /<attack>/<victim copy>."""
    images = {
        f"/{name}/{_path(label)}": data
        for name, attack in (("hidden", HIDDEN), ("swapped", SWAPPED))
        for label, data in (("attacker", attack.attacker), *attack.victims)
    }

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=images[request.path], content_type="image/png")

    app = web.Application()
    for path in images:
        app.router.add_get(path, image)
    runner, base = await serve_on_loopback(app)
    yield base
    await runner.cleanup()


def _path(label: str) -> str:
    """Return a copy's label as a URL path segment ("resized 75%" -> "resized-75")."""
    return label.replace(" ", "-").replace("%", "")


def _addresses(result: dict[str, Any]) -> list[str]:
    return [ca["address"] for ca in result["buy_ca"]]


async def test_a_lookalike_sent_first_never_gives_the_victim_its_address(
    kafka: LocalKafka, lookalike_host: str, start_worker: Any
) -> None:
    settings = unique_settings(kafka, admin_key=ADMIN)
    start_worker(settings)
    base = f"http://127.0.0.1:{settings.web_port}"
    async with aiohttp.ClientSession(base_url=base) as http:
        async with http.post(
            "/admin/keys", json={"label": "attacker"}, headers={"x-admin-key": ADMIN}
        ) as r:
            attacker_key = (await r.json())["data"]["api_key"]
        # 1. Through /ocr, with any key: the victim's picture, the attacker's address above.
        body = {"image": base64.b64encode(HIDDEN.attacker).decode()}
        async with http.post("/ocr", json=body, headers={"x-api-key": attacker_key}) as r:
            assert r.status == 200, await r.text()
            seeded = (await r.json())["data"]["text"]
    assert seeded.count("CA:") == 2  # the engine reads both addresses in the attacker's image
    await produce(
        kafka.bootstrap,
        settings.posts_topic,
        [post("victim1", "our CA", [f"{lookalike_host}/hidden/original"])],
    )
    [first] = await consume(kafka.bootstrap, settings.ocr_result_topic, count=1)
    assert _addresses(first) == [HIDDEN.victim_address]

    # 2. Through a post: the template printing the attacker's address, read first.
    await produce(
        kafka.bootstrap,
        settings.posts_topic,
        [post("attacker2", "gm", [f"{lookalike_host}/swapped/attacker"])],
    )
    await consume(kafka.bootstrap, settings.ocr_result_topic, count=2)
    victims = [
        post(f"victim2-{n}", "our CA", [f"{lookalike_host}/swapped/{_path(label)}"])
        for n, label in enumerate(("original", "resized 75%"))
    ]
    await produce(kafka.bootstrap, settings.posts_topic, victims)
    results = await consume(kafka.bootstrap, settings.ocr_result_topic, count=4)
    by_post = {r["ref"]["mid"]: r for r in results}
    for mid in ("victim2-0", "victim2-1"):
        assert _addresses(by_post[mid]) == [SWAPPED.victim_address], by_post[mid]
    assert SWAPPED.victim_address not in str(by_post["attacker2"])
