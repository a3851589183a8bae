"""Download images from untrusted URLs: bounded size, bounded time, no internal targets."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from app.settings import Settings
from models.events import ErrorKind

_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CHUNK = 64 * 1024


class FetchError(Exception):
    """The image could not be fetched; the message says why, ``kind`` says it for machines."""

    kind: ErrorKind = "fetch_failed"


class FetchRefusedError(FetchError):
    """The URL points at a target we refuse (scheme, private address)."""

    kind: ErrorKind = "refused"


class FetchTooLargeError(FetchError):
    """The body is larger than the size cap."""

    kind: ErrorKind = "too_large"


class FetchTimeoutError(FetchError):
    """The host did not answer, or did not send the whole body, in time."""

    kind: ErrorKind = "timeout"


class FetchStatusError(FetchError):
    """The host answered with an HTTP status other than 200."""

    kind: ErrorKind = "http_status"


class TooManyRedirectsError(FetchError):
    """The redirects did not end within the limit (a loop, or a long chain)."""

    kind: ErrorKind = "too_many_redirects"


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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes whose last 32 bits are an IPv4 address the packet ends up at: IPv4-compatible
# (deprecated, ::a.b.c.d), NAT64 well-known and local-use prefixes (RFC 6052, RFC 8215).
_LAST_32_BITS_IPV4 = tuple(
    ipaddress.IPv6Network(net) for net in ("::/96", "64:ff9b::/96", "64:ff9b:1::/48")
)
# ISATAP interface identifiers (RFC 5214): 0000:5efe or 0200:5efe, then the IPv4 address.
_ISATAP_IDS = (0x00005EFE, 0x02005EFE)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Return the IPv4 addresses an IPv6 address leads to (transition forms), if any."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # (server, client)
    value = int(ip)
    if any(ip in net for net in _LAST_32_BITS_IPV4) and value & 0xFFFFFFFF:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if (value >> 32) & 0xFFFFFFFF in _ISATAP_IDS:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    return found


def _parse(address: str) -> IPAddress:
    return ipaddress.ip_address(address.split("%", 1)[0])


def _public(ip: IPAddress) -> bool:
    return ip.is_global and not ip.is_multicast


def is_public_address(address: str) -> bool:
    """Tell whether an IP address is globally routable (not loopback/private/link-local/...).

    An IPv6 address that embeds an IPv4 one (mapped, compatible, NAT64, 6to4, Teredo, ISATAP)
    is public only if that IPv4 address is too.
    """
    ip = _parse(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # the IPv4 address itself, written as IPv6
            return _public(ip.ipv4_mapped)
        return _public(ip) and all(_public(v4) for v4 in embedded_ipv4(ip))
    return _public(ip)


def is_fetchable_address(address: str, allowed_networks: tuple[Network, ...] = ()) -> bool:
    """Tell whether we may connect to an address: public, or inside an allowed network."""
    if is_public_address(address):
        return True
    ip = _parse(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in allowed_networks)


# Why in the message: the operator may mean it (an internal image host), and this says how.
_ALLOW_HINT = " (OCRSTREAM_FETCH_ALLOWED_NETWORKS can allow its network)"


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
                raise FetchRefusedError(f"{host} resolves to a non-public address{_ALLOW_HINT}")
        return results

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


async def check_resolves(url: URL, limits: FetchLimits, timeout_s: float = 5.0) -> None:
    """Refuse (FetchRefusedError) a URL whose host resolves to a non-public address, or not at all.

    Why besides the check at each connection: a webhook registered with such a host would be
    accepted, then every delivery dead-lettered; refused at registration, the key holder knows.
    """
    check_url(url, limits)
    if limits.allow_private or url.host is None:
        return
    resolver = resolver_for(limits)
    try:
        async with asyncio.timeout(timeout_s):
            await resolver.resolve(url.host, url.port or 0)
    except (OSError, TimeoutError):
        raise FetchRefusedError(f"{url.host} does not resolve") from None
    finally:
        await resolver.close()


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
        raise FetchRefusedError(f"{url.host} is not a public address{_ALLOW_HINT}")


class HostSlots:
    """Bounds the downloads in flight to one host, so a slow host holds only its own slots.

    Why: a post with several images on a host that sends a byte a second held every fetch
    slot of the worker for the whole timeout; other posts' images waited behind it.
    """

    def __init__(self, per_host: int, wait_s: float) -> None:
        self._per_host = per_host
        self._wait_s = wait_s
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        """Hold a download slot of ``host``; FetchTimeoutError if none frees within the wait."""
        slots = self._slots.setdefault(host, asyncio.Semaphore(self._per_host))
        self._users[host] = self._users.get(host, 0) + 1
        try:
            try:
                await asyncio.wait_for(slots.acquire(), self._wait_s)
            except TimeoutError:
                raise FetchTimeoutError(
                    f"timed out waiting for the image host: {self._per_host} downloads from "
                    f"{host[:100]} were already under way"
                ) from None
            try:
                yield
            finally:
                slots.release()
        finally:
            self._users[host] -= 1
            if not self._users[host]:  # bounded: only hosts with downloads keep a semaphore
                del self._users[host], self._slots[host]

    def busy(self) -> dict[str, int]:
        """Return, per host with downloads under way or waiting, how many (for /status/)."""
        return dict(self._users)


async def fetch_image(
    session: aiohttp.ClientSession,
    url: str,
    limits: FetchLimits,
    hosts: HostSlots | None = None,
) -> bytes:
    """Download ``url`` following bounded redirects, stopping at ``limits.max_bytes``.

    With ``hosts``, each hop holds one of its host's download slots.
    """
    try:
        current = URL(url)
    except (ValueError, TypeError):
        raise FetchRefusedError("not a valid URL") from None
    for _ in range(limits.max_redirects + 1):
        check_url(current, limits)
        try:
            async with (
                hosts.hold(current.host or "") if hosts is not None else nullcontext(),
                session.get(current, allow_redirects=False) as response,
            ):
                if response.status in _REDIRECT_STATUSES and "Location" in response.headers:
                    current = _redirect_target(current, response.headers["Location"])
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


def _redirect_target(current: URL, location: str) -> URL:
    try:
        return current.join(URL(location))
    except (ValueError, TypeError):
        raise FetchError("the image host redirected to an invalid URL") from None


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
