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
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CHUNK = 64 * 1024


class FetchError(Exception):
    """The image could not be fetched; the message says why, ``kind`` says it for machines."""

    kind = "fetch_failed"


class FetchRefusedError(FetchError):
    """The URL points at a target we refuse (scheme, private address)."""

    kind = "refused"


class FetchTooLargeError(FetchError):
    """The body is larger than the size cap."""

    kind = "too_large"


class FetchTimeoutError(FetchError):
    """The host did not answer, or did not send the whole body, in time."""

    kind = "timeout"


class FetchStatusError(FetchError):
    """The host answered with an HTTP status other than 200."""

    kind = "http_status"


class TooManyRedirectsError(FetchError):
    """The redirects did not end within the limit (a loop, or a long chain)."""

    kind = "too_many_redirects"


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on one download."""

    max_bytes: int
    connect_timeout_s: float
    total_timeout_s: float
    max_redirects: int
    allow_private: bool
    # Non-public networks fetched anyway (an operator's internal image host, a test server).
    allowed_networks: tuple[Network, ...] = ()


def parse_networks(text: str) -> tuple[Network, ...]:
    """Parse a comma-separated list of CIDR networks; raise ValueError naming a bad one."""
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"not a network: {part!r} (expected e.g. 10.1.0.0/16)") from None
    return tuple(networks)


def limits_from(settings: Settings) -> FetchLimits:
    """Return the download limits the settings ask for."""
    return FetchLimits(
        max_bytes=settings.max_image_bytes,
        connect_timeout_s=settings.fetch_connect_timeout_s,
        total_timeout_s=settings.fetch_total_timeout_s,
        max_redirects=settings.fetch_max_redirects,
        allow_private=settings.fetch_allow_private,
        allowed_networks=parse_networks(settings.fetch_allowed_networks),
    )


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public_address(address: str) -> bool:
    """Tell whether an IP address is globally routable (not loopback/private/link-local/...)."""
    ip = _ip(address)
    return ip.is_global and not ip.is_multicast


def is_fetchable_address(address: str, allowed_networks: tuple[Network, ...] = ()) -> bool:
    """Tell whether we may connect to an address: public, or inside an allowed network."""
    ip = _ip(address)
    return is_public_address(address) or any(ip in network for network in allowed_networks)


class PublicOnlyResolver(AbstractResolver):
    """Resolve names and refuse any that lead to a non-public address (checked per connect)."""

    def __init__(self, allowed_networks: tuple[Network, ...] = ()) -> None:
        self._inner = DefaultResolver()
        self._allowed = allowed_networks

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host``; raise FetchRefusedError if any address is not fetchable."""
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if not is_fetchable_address(result["host"], self._allowed):
                # Why refuse all: a name with one internal address is a rebinding attempt.
                raise FetchRefusedError(f"{host} resolves to a non-public address")
        return results

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


def resolver_for(limits: FetchLimits) -> AbstractResolver:
    """Return the resolver outbound connections use: public addresses only, unless allowed."""
    if limits.allow_private:
        return DefaultResolver()
    return PublicOnlyResolver(limits.allowed_networks)


def new_session(limits: FetchLimits) -> aiohttp.ClientSession:
    """Return a client session whose connections obey ``limits`` (one per worker)."""
    connector = aiohttp.TCPConnector(resolver=resolver_for(limits), limit=64, ttl_dns_cache=60)
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


def check_url(url: URL, limits: FetchLimits) -> None:
    """Refuse non-http(s) URLs and, unless allowed, literal non-public IP hosts."""
    if url.scheme not in ("http", "https") or not url.host:
        raise FetchRefusedError(f"only http(s) URLs are fetched, not {url.scheme or 'none'}:")
    if limits.allow_private:
        return
    try:
        ipaddress.ip_address(url.host)
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    # Why here: aiohttp skips the resolver for literal IPs.
    if not is_fetchable_address(url.host, limits.allowed_networks):
        raise FetchRefusedError(f"{url.host} is not a public address")


async def fetch_image(session: aiohttp.ClientSession, url: str, limits: FetchLimits) -> bytes:
    """Download ``url`` following bounded redirects, stopping at ``limits.max_bytes``."""
    current = URL(url)
    for _ in range(limits.max_redirects + 1):
        check_url(current, limits)
        try:
            async with session.get(current, allow_redirects=False) as response:
                if response.status in _REDIRECT_STATUSES and "Location" in response.headers:
                    current = current.join(URL(response.headers["Location"]))
                    continue
                if response.status != 200:
                    raise FetchStatusError(f"HTTP {response.status} from image host")
                return await _read_capped(response, limits.max_bytes)
        except FetchError:
            raise
        except TimeoutError:
            raise FetchTimeoutError("timed out fetching the image") from None
        except aiohttp.ClientError as exc:
            raise FetchError(f"cannot fetch the image: {describe_error(exc)}") from None
    raise TooManyRedirectsError(f"more than {limits.max_redirects} redirects")


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


def refusal_in(exc: BaseException) -> FetchRefusedError | None:
    """Return our resolver's refusal if it is what caused ``exc`` (connectors wrap it)."""
    cause: Any = exc
    while cause is not None:
        if isinstance(cause, FetchRefusedError):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def describe_error(exc: BaseException) -> str:
    """Return why a client error happened, our refusal's words first when it was one."""
    refusal = refusal_in(exc)
    return str(refusal) if refusal else str(exc) or type(exc).__name__
