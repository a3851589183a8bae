"""The whole pipeline on a real Kafka broker with the real OCR engine."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.kafka.local import LocalKafka
from app.keys.admin import admin_over_kafka
from app.keys.changelog import read_keys
from app.settings import Settings
from harness.records import consume, post, produce
from harness.workers import operator_url, unique_settings

pytestmark = pytest.mark.integration


async def _new_key(settings: Settings, label: str, keywords: tuple[str, ...] = ()) -> str:
    admin = admin_over_kafka(settings)
    created = await admin.create(label)
    record = created.record
    if keywords:
        record = (await admin.add_keywords(created.command.key_id, list(keywords))).record
    expected = tuple(w.strip().lower() for w in keywords)
    assert record is not None, f"key {label} was not applied by the worker"
    assert record.keywords == expected
    assert created.api_key and created.api_key not in record.model_dump_json()  # only the hash
    return record.key_id


async def _worker_page(settings: Settings, path: str) -> str:
    """Return a page of the worker's web server (``/status/``, ``/metrics``) as text."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{operator_url(settings)}{path}") as response:
            return await response.text()


def _by_source(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["source"], []).append(event)
    return grouped


async def test_posts_flow_to_ocr_results_and_keyword_channels(
    kafka: LocalKafka, image_host: str, start_worker: Any, manifest: dict[str, Any]
) -> None:
    settings = unique_settings(kafka)
    worker = start_worker(settings)

    pepe_key = await _new_key(settings, "pepe fan", (" PEPE ",))
    all_key = await _new_key(settings, "firehose")
    raydium_key = await _new_key(settings, "image-only word", ("Raydium",))

    posts = [
        post("1001", "gm frens, new chart", [f"{image_host}/s30_promo.png"]),
        post("1002", "new listing today", [f"{image_host}/s10_sol.jpg"], source="telegram"),
        post("1003", "look at this", [f"{image_host}/s02_sol.png"], source="discord"),
        b"{this is not json",
        b'{"source": "x", "mid": 5, "images": "not-a-list"}',
        post("1004", "just words, no picture", []),
    ]
    # One key: every record lands on one partition, so the valid post after the bad ones
    # proves the stream kept going.
    await produce(kafka.bootstrap, settings.posts_topic, posts, key=b"same-partition")

    results = await consume(kafka.bootstrap, settings.ocr_result_topic, count=3)
    assert len(results) == 3, results
    by_url = {r["image_url"]: r for r in results}
    pepe = by_url[f"{image_host}/s30_promo.png"]
    assert set(pepe) == {"source", "image_url", "text", "ref", "buy_ca"}
    assert pepe["source"] == "ocr_result"
    assert pepe["text"].split("\n") == manifest["s30_promo.png"]["lines"]
    assert pepe["ref"] == {
        "source": "x",
        "mid": "1001",
        "sid": "author-1001",
        "link": "https://x.com/author/status/1001",
    }
    assert pepe["buy_ca"] == [
        {"network": "evm", "address": "0x979097B35B88A0c32751f9732d5d37c609B3f1Ad"}
    ]
    bonk = by_url[f"{image_host}/s10_sol.jpg"]
    assert bonk["ref"]["source"] == "telegram"
    assert bonk["buy_ca"] == [
        {"network": "solana", "address": "DKwfFc2KA3i22DmxzLQzqi9weodLJXDxCtDpYaS9QJqc"}
    ]
    wif = by_url[f"{image_host}/s02_sol.png"]
    assert wif["text"].split("\n") == manifest["s02_sol.png"]["lines"]

    # The key without keywords receives everything: 4 posts + 3 ocr_results, unannotated.
    firehose = await consume(kafka.bootstrap, settings.channel_topic(all_key), count=7)
    grouped = _by_source(firehose)
    assert len(grouped["ocr_result"]) == 3
    assert sorted(
        e["mid"] for src in ("x", "telegram", "discord") for e in grouped.get(src, [])
    ) == [
        "1001",
        "1002",
        "1003",
        "1004",
    ]
    assert all("keyword_matches" not in e for e in firehose)

    # Everything was filtered by now; the keyword keys got only their matches.
    pepe_only = await consume(kafka.bootstrap, settings.channel_topic(pepe_key), 1, settle_s=2)
    assert len(pepe_only) == 1, pepe_only
    assert pepe_only[0]["source"] == "ocr_result"
    assert pepe_only[0]["image_url"] == f"{image_host}/s30_promo.png"
    assert pepe_only[0]["keyword_matches"] == ["pepe"]

    # "raydium" is nowhere in the post text: only inside the image.
    in_image = await consume(kafka.bootstrap, settings.channel_topic(raydium_key), 1, settle_s=2)
    assert [e["image_url"] for e in in_image] == [f"{image_host}/s10_sol.jpg"]
    assert in_image[0]["keyword_matches"] == ["raydium"]

    letters = await consume(kafka.bootstrap, settings.dead_letter_topic, count=2)
    assert len(letters) == 2, letters
    assert {letter["stage"] for letter in letters} == {"posts"}
    reasons = " | ".join(letter["reason"] for letter in letters)
    assert "invalid post" in reasons
    assert "images" in reasons  # the wrong type is named

    async with aiohttp.ClientSession(base_url=operator_url(settings)) as http:
        async with http.get("/status/") as response:
            assert response.status == 200
            status = await response.json()
        async with http.get("/metrics") as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            exposition = await response.text()
    assert status["active_keys"] == 3
    assert status["counts"]["posts"] == 6
    assert status["counts"]["ocr_results"] == 3
    assert status["counts"]["dead_letters{stage=posts}"] == 2
    assert status["ocr_ms"]["n"] == 3 and status["ocr_ms"]["p50"] > 0
    assert status["in_flight"] == []  # nothing left under way
    assert sum(status["consumer_lag_by_partition"].values()) == sum(status["consumer_lag"].values())

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }
    assert samples[("ocrstream_ocr_results_total", ())] == 3
    assert samples[("ocrstream_ocr_seconds_count", ())] == 3
    assert samples[("ocrstream_topic_records_in_total", (("topic", settings.posts_topic),))] == 6
    assert samples[("ocrstream_dead_letters_total", (("stage", "posts"),))] == 2
    # 7 candidates x 3 keys: the firehose takes all 7, "pepe" 1, "raydium" 1.
    assert samples[("ocrstream_deliveries_total", (("outcome", "sent"),))] == 9
    assert samples[("ocrstream_deliveries_total", (("outcome", "filtered"),))] == 12

    log = worker.log()
    assert "OCR ready" in log
    assert "osk_" not in log  # API keys never reach the logs


async def test_keywords_table_survives_a_worker_restart(
    kafka: LocalKafka, image_host: str, start_worker: Any
) -> None:
    settings = unique_settings(kafka)
    first = start_worker(settings)
    pepe_key = await _new_key(settings, "pepe fan", ("pepe", "doge"))
    first.stop()

    start_worker(settings)  # recovers the keys table from its changelog
    await produce(
        kafka.bootstrap,
        settings.posts_topic,
        [
            post("2001", "chart", [f"{image_host}/s30_promo.png"]),
            post("2002", "chart", [f"{image_host}/s02_sol.png"]),
        ],
    )
    results = await consume(kafka.bootstrap, settings.ocr_result_topic, count=2)
    assert len(results) == 2
    delivered = await consume(kafka.bootstrap, settings.channel_topic(pepe_key), 1, settle_s=3)
    assert [(e["image_url"].rsplit("/", 1)[1], e["keyword_matches"]) for e in delivered] == [
        ("s30_promo.png", ["pepe"])
    ]
    keys = await read_keys(settings)
    assert keys[pepe_key].keywords == ("pepe", "doge")


async def test_a_repeated_image_is_read_once(
    kafka: LocalKafka, image_host: str, start_worker: Any
) -> None:
    settings = unique_settings(kafka)
    start_worker(settings)
    url = f"{image_host}/s10_sol.jpg"
    same_bytes = url.replace("/img/", "/copy/")
    await produce(
        kafka.bootstrap,
        settings.posts_topic,
        [post("3001", "a", [url]), post("3002", "b", [url, same_bytes])],
        key=b"one-partition",
    )
    results = await consume(kafka.bootstrap, settings.ocr_result_topic, count=3)
    assert sorted(r["image_url"] for r in results) == sorted([url, url, same_bytes])
    assert {r["ref"]["mid"] for r in results} == {"3001", "3002"}
    assert len({r["text"] for r in results}) == 1
    status = json.loads(await _worker_page(settings, "/status/"))
    exposition = await _worker_page(settings, "/metrics")
    assert status["ocr_ms"]["n"] == 1  # the engine ran once
    counts = status["counts"]
    assert counts.get("ocr_cache_hits{by=url}", 0) + counts.get("ocr_cache_hits{by=bytes}", 0) == 2
    # Counted and exported alike (the string-named counters of old never reached /metrics).
    hits = [
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "ocrstream_ocr_cache_hits_total"
    ]
    assert sum(hits) == 2


async def test_a_reencoded_copy_reuses_the_reading_of_its_original(
    kafka: LocalKafka, image_host: str, start_worker: Any
) -> None:
    settings = unique_settings(kafka)
    start_worker(settings)
    original = f"{image_host}/s10_sol.jpg"
    copy = original.replace("/img/", "/jpeg80/")  # other bytes, same picture
    await produce(kafka.bootstrap, settings.posts_topic, [post("copy1", "a", [original])])
    [first] = await consume(kafka.bootstrap, settings.ocr_result_topic, count=1)
    await produce(kafka.bootstrap, settings.posts_topic, [post("copy2", "b", [copy])])
    results = await consume(kafka.bootstrap, settings.ocr_result_topic, count=2)
    [second] = [r for r in results if r["image_url"] == copy]
    assert second["ref"]["mid"] == "copy2"
    assert second["text"] == first["text"] and second["buy_ca"] == first["buy_ca"]
    assert second["buy_ca"] == [
        {"network": "solana", "address": "DKwfFc2KA3i22DmxzLQzqi9weodLJXDxCtDpYaS9QJqc"}
    ]
    status = json.loads(await _worker_page(settings, "/status/"))
    assert status["ocr_ms"]["n"] == 1  # the engine ran once
    assert status["counts"].get("ocr_cache_hits{by=similar}") == 1
    assert status["cache"]["copies"] == {"entries": 1, "hits": 1, "refused": 0}


async def test_a_qr_code_adds_its_address_and_its_text_matches_keywords(
    kafka: LocalKafka, image_host: str, start_worker: Any
) -> None:
    settings = unique_settings(kafka)
    start_worker(settings)
    # "frogcoin" is only in a QR code's link: neither in the post nor in the printed text.
    frog_key = await _new_key(settings, "qr only word", ("frogcoin",))
    await produce(
        kafka.bootstrap,
        settings.posts_topic,
        [post("qr1", "scan it", [f"{image_host}/qr_promo.png"])],
    )
    [result] = await consume(kafka.bootstrap, settings.ocr_result_topic, count=1)
    assert result["text"] == "SCAN TO BUY\nfair launch today"
    assert result["buy_ca"] == [
        {
            "network": "evm",
            "address": "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D",
            "chain": "ethereum",
        }
    ]
    assert result["qr"] == [
        {
            "text": "ethereum:0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D@1?value=1e17",
            "kind": "uri",
        },
        {"text": "https://t.me/frogcoin", "kind": "link"},
    ]
    [delivered] = await consume(kafka.bootstrap, settings.channel_topic(frog_key), count=1)
    assert delivered["source"] == "ocr_result" and delivered["keyword_matches"] == ["frogcoin"]
