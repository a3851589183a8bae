"""Download images from untrusted URLs: bounded size, bounded time, no internal targets."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from app.settings import Settings

_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024


class FetchError(Exception):
    """The image could not be fetched; the message says why."""


class FetchRefusedError(FetchError):
    """The URL points at a target we refuse (scheme, private address)."""


class FetchTooLargeError(FetchError):
    """The body is larger than the size cap."""


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on one download."""

    max_bytes: int
    connect_timeout_s: float
    total_timeout_s: float
    max_redirects: int
    allow_private: bool


def limits_from(settings: Settings) -> FetchLimits:
    """Return the download limits the settings ask for."""
    return FetchLimits(
        max_bytes=settings.max_image_bytes,
        connect_timeout_s=settings.fetch_connect_timeout_s,
        total_timeout_s=settings.fetch_total_timeout_s,
        max_redirects=settings.fetch_max_redirects,
        allow_private=settings.fetch_allow_private,
    )


def is_public_address(address: str) -> bool:
    """Tell whether an IP address is globally routable (not loopback/private/link-local/...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class PublicOnlyResolver(AbstractResolver):
    """Resolve names and refuse any that lead to a non-public address (checked per connect)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host``; raise FetchRefusedError if any address is not public."""
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if not is_public_address(result["host"]):
                # Why refuse all: a name with one internal address is a rebinding attempt.
                raise FetchRefusedError(f"{host} resolves to a non-public address")
        return results

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


def new_session(limits: FetchLimits) -> aiohttp.ClientSession:
    """Return a client session whose connections obey ``limits`` (one per worker)."""
    resolver: AbstractResolver = DefaultResolver() if limits.allow_private else PublicOnlyResolver()
    connector = aiohttp.TCPConnector(resolver=resolver, limit=64, ttl_dns_cache=60)
    timeout = aiohttp.ClientTimeout(
        total=limits.total_timeout_s,
        sock_connect=limits.connect_timeout_s,
        sock_read=limits.connect_timeout_s * 2,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        headers={"User-Agent": "ocrstream/0.1 (+image OCR)"},
    )


def check_url(url: URL, allow_private: bool) -> None:
    """Refuse non-http(s) URLs and, unless allowed, literal non-public IP hosts."""
    if url.scheme not in ("http", "https") or not url.host:
        raise FetchRefusedError(f"only http(s) URLs are fetched, not {url.scheme or 'none'}:")
    if allow_private:
        return
    try:
        ipaddress.ip_address(url.host)
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    # Why here: aiohttp skips the resolver for literal IPs.
    if not is_public_address(url.host):
        raise FetchRefusedError(f"{url.host} is not a public address")


async def fetch_image(session: aiohttp.ClientSession, url: str, limits: FetchLimits) -> bytes:
    """Download ``url`` following bounded redirects, stopping at ``limits.max_bytes``."""
    current = URL(url)
    for _ in range(limits.max_redirects + 1):
        check_url(current, limits.allow_private)
        try:
            async with session.get(current, allow_redirects=False) as response:
                if response.status in _REDIRECT_STATUSES and "Location" in response.headers:
                    current = current.join(URL(response.headers["Location"]))
                    continue
                if response.status != 200:
                    raise FetchError(f"HTTP {response.status} from image host")
                return await _read_capped(response, limits.max_bytes)
        except FetchError:
            raise
        except TimeoutError:
            raise FetchError("timed out fetching the image") from None
        except aiohttp.ClientError as exc:
            raise FetchError(f"cannot fetch the image: {_describe(exc)}") from None
    raise FetchError(f"more than {limits.max_redirects} redirects")


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise FetchTooLargeError(f"image is {declared:,} bytes, over the {max_bytes:,} limit")
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body.extend(chunk)
        if len(body) > max_bytes:
            raise FetchTooLargeError(f"image is over the {max_bytes:,} byte limit")
    return bytes(body)


def _describe(exc: BaseException) -> str:
    # Why: connector errors wrap our resolver's refusal; surface the refusal's words.
    cause: Any = exc
    while cause is not None:
        if isinstance(cause, FetchRefusedError):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__
