"""Image downloads against a real HTTP server on loopback: caps, timeouts, redirects, refusals."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from yarl import URL

from app.fetch import (
    FetchError,
    FetchLimits,
    FetchRefusedError,
    FetchStatusError,
    FetchTimeoutError,
    FetchTooLargeError,
    PublicOnlyResolver,
    TooManyRedirectsError,
    check_url,
    fetch_image,
    is_fetchable_address,
    is_public_address,
    new_session,
    parse_networks,
)
from harness.loopback import serve_on_loopback

CAP = 1000
LIMITS = FetchLimits(
    max_bytes=CAP, connect_timeout_s=1, total_timeout_s=2, max_redirects=3, allow_private=True
)


async def _ok(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * CAP, content_type="image/png")


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * (CAP + 1), content_type="image/png")


async def _chunked_forever(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(10_000):  # bounded: far past the cap, stops when the client hangs up
        await response.write(b"y" * 512)
    return response


async def _stall(request: web.Request) -> web.Response:
    await asyncio.sleep(3)  # past the 2 s total timeout
    return web.Response(body=b"late")


async def _redirect(request: web.Request) -> web.Response:
    hops = int(request.match_info["n"])
    target = "/ok" if hops == 0 else f"/redirect/{hops - 1}"
    raise web.HTTPFound(target)


async def _loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


@pytest.fixture
async def host() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/ok", _ok)
    app.router.add_get("/big", _big)
    app.router.add_get("/chunked", _chunked_forever)
    app.router.add_get("/stall", _stall)
    app.router.add_get("/redirect/{n}", _redirect)
    app.router.add_get("/loop", _loop)
    runner, base = await serve_on_loopback(app)
    yield base
    await runner.cleanup()


async def _fetch(url: str, limits: FetchLimits = LIMITS) -> bytes:
    async with new_session(limits) as session:
        return await fetch_image(session, url, limits)


async def test_body_at_the_cap_is_read_whole(host: str) -> None:
    assert len(await _fetch(f"{host}/ok")) == CAP


async def test_declared_body_over_the_cap_is_refused(host: str) -> None:
    with pytest.raises(FetchTooLargeError, match="over the 1,000"):
        await _fetch(f"{host}/big")


async def test_chunked_body_over_the_cap_stops_reading(host: str) -> None:
    with pytest.raises(FetchTooLargeError):
        await _fetch(f"{host}/chunked")


async def test_a_stalled_host_times_out(host: str) -> None:
    with pytest.raises(FetchTimeoutError, match="timed out"):
        await _fetch(f"{host}/stall")


async def test_redirects_are_followed_up_to_the_limit(host: str) -> None:
    # /redirect/n answers with n + 1 redirects before /ok.
    assert len(await _fetch(f"{host}/redirect/2")) == CAP
    with pytest.raises(TooManyRedirectsError, match="more than 3 redirects"):
        await _fetch(f"{host}/redirect/3")
    with pytest.raises(FetchError, match="redirects"):
        await _fetch(f"{host}/loop")


async def test_http_errors_are_reported(host: str) -> None:
    with pytest.raises(FetchStatusError, match="HTTP 404"):
        await _fetch(f"{host}/missing")


async def test_loopback_is_refused_by_default(host: str) -> None:
    strict = dataclasses.replace(LIMITS, allow_private=False)
    with pytest.raises(FetchRefusedError, match="not a public address"):
        await _fetch(f"{host}/ok", strict)
    port = host.rsplit(":", 1)[1]
    with pytest.raises(FetchError, match="non-public"):
        await _fetch(f"http://localhost:{port}/ok", strict)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1",
     "fe80::1", "fd00::1", "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1", "224.0.0.1"],
)  # fmt: skip
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "64:ff9b::7f00:1",  # NAT64 well-known prefix
        "64:ff9b:1::a01:203",  # NAT64 local-use prefix, 10.1.2.3
        "2002:7f00:1::",  # 6to4
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
        "2606:4700::5efe:7f00:1",  # ISATAP interface id
        "::ffff:169.254.169.254",
    ],
)
def test_ipv6_forms_that_embed_an_internal_ipv4_address_are_refused(address: str) -> None:
    assert not is_public_address(address)
    loopback_allowed = parse_networks("127.0.0.1/32")
    assert not is_fetchable_address(address, loopback_allowed) or address.startswith("::ffff:")
    strict = dataclasses.replace(LIMITS, allow_private=False)
    with pytest.raises(FetchRefusedError, match="not a public address"):
        check_url(URL(f"http://[{address}]/a.png"), strict)


def test_ipv6_forms_of_public_ipv4_addresses_stay_public() -> None:
    assert is_public_address("64:ff9b::808:808")
    assert is_public_address("2002:808:808::")
    assert is_public_address("::ffff:8.8.8.8")


def test_public_addresses_are_public() -> None:
    assert is_public_address("93.184.216.34")
    assert is_public_address("2606:4700::1111")


def test_only_http_urls_are_fetched() -> None:
    strict = dataclasses.replace(LIMITS, allow_private=False)
    for url in ("file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/"):
        with pytest.raises(FetchRefusedError, match="only http"):
            check_url(URL(url), LIMITS)
    with pytest.raises(FetchRefusedError):
        check_url(URL("http://169.254.169.254/latest/meta-data"), strict)


def test_allowed_networks_open_only_themselves() -> None:
    limits = dataclasses.replace(
        LIMITS, allow_private=False, allowed_networks=parse_networks(" 127.0.0.0/8, fd00::/8 ")
    )
    check_url(URL("http://127.0.0.1:8080/a.png"), limits)
    check_url(URL("http://[fd00::5]/a.png"), limits)
    for url in ("http://10.0.0.1/", "http://169.254.169.254/latest/meta-data", "http://[::1]/"):
        with pytest.raises(FetchRefusedError, match="not a public address"):
            check_url(URL(url), limits)
    with pytest.raises(ValueError, match="not a network: 'nope'"):
        parse_networks("10.0.0.0/8,nope")


def test_each_failure_names_its_kind() -> None:
    kinds = {
        error.kind
        for error in (
            FetchError,
            FetchRefusedError,
            FetchTooLargeError,
            FetchTimeoutError,
            FetchStatusError,
            TooManyRedirectsError,
        )
    }
    assert len(kinds) == 6  # distinct, so metrics and error events can tell them apart


async def test_resolver_refuses_names_of_internal_addresses() -> None:
    resolver = PublicOnlyResolver()
    try:
        with pytest.raises(FetchRefusedError):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
