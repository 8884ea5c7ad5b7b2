"""Fetch an original from an origin URL without becoming an SSRF proxy.

- only http and https; no credentials in the URL; the host on the allow-list
  when one is configured;
- every address a host resolves to must be public: private, loopback,
  link-local, multicast and reserved ranges are refused *after* resolution, by
  the resolver aiohttp connects through, so DNS rebinding cannot slip past;
  IP-literal hosts (which aiohttp does not resolve) are checked up front;
- redirects are followed by hand, each hop checked again; bytes and time bounded.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection
from typing import Any, Final

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

__all__ = [
    "FetchError",
    "OriginPolicy",
    "check_origin",
    "fetch_origin",
    "guarded_session",
]

MAX_REDIRECTS: Final = 5
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """The origin could not be fetched; the message is safe to record."""


class OriginPolicy:
    def __init__(self, allowed_hosts: Collection[str], *, allow_private: bool) -> None:
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self.allow_private = allow_private

    def host_allowed(self, host: str) -> bool:
        if not self.allowed_hosts:
            return True
        host = host.lower().rstrip(".")
        return any(
            host == allowed or (allowed.startswith(".") and host.endswith(allowed))
            for allowed in self.allowed_hosts
        )

    def address_allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return self.allow_private or (ip.is_global and not ip.is_multicast)


def check_origin(raw: str, policy: OriginPolicy) -> URL:
    """The URL, or `FetchError` saying why it may not be fetched."""
    try:
        url = URL(raw)
    except (ValueError, TypeError):
        raise FetchError("not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise FetchError("only absolute http and https URLs can be ingested")
    if not _valid_host(url.host):
        raise FetchError("the host is not a valid name or address")
    if url.user is not None or url.password is not None:
        raise FetchError("credentials in the URL are not accepted")
    if not policy.host_allowed(url.host):
        raise FetchError(f"host {url.host!r} is not on the ingest allow-list")
    try:
        literal = ipaddress.ip_address(url.host)
    except ValueError:
        return url
    if not policy.address_allowed(str(literal)):
        raise FetchError("the address is private, loopback or link-local")
    return url


def _valid_host(host: str) -> bool:
    """RFC 1035 lengths, checked on the IDNA form that DNS would see."""
    if host.startswith("[") or ":" in host:
        return True  # an IPv6 literal; checked as an address below
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.rstrip(".").split(".")
    return len(ascii_host) <= 253 and all(0 < len(label) <= 63 for label in labels)


class GuardedResolver(AbstractResolver):
    """Resolves as usual, then refuses hosts with any non-public address."""

    def __init__(self, policy: OriginPolicy) -> None:
        self._policy = policy
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        refused = [
            r["host"] for r in results if not self._policy.address_allowed(r["host"])
        ]
        if refused:
            raise OSError(f"{host} resolves to a non-public address")
        return results

    async def close(self) -> None:
        await self._resolver.close()


def guarded_session(policy: OriginPolicy) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy), limit=16)
    return aiohttp.ClientSession(
        connector=connector, headers={"User-Agent": "image-gateway ingest"}
    )


async def fetch_origin(
    session: aiohttp.ClientSession,
    raw: str,
    policy: OriginPolicy,
    *,
    max_bytes: int,
    seconds: float,
) -> tuple[bytes, str]:
    """The origin's bytes and the file name its final URL suggests."""
    url = check_origin(raw, policy)
    client_timeout = aiohttp.ClientTimeout(total=seconds)
    for _ in range(MAX_REDIRECTS + 1):
        try:
            async with session.get(
                url, allow_redirects=False, timeout=client_timeout
            ) as response:
                if response.status in _REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchError("a redirect without a Location")
                    url = check_origin(str(url.join(URL(location))), policy)
                    continue
                if response.status != 200:
                    raise FetchError(f"the origin answered {response.status}")
                return await _read(response, max_bytes), url.name or "origin"
        except TimeoutError:
            raise FetchError(f"the origin took longer than {seconds:g} s") from None
        except aiohttp.ClientError as exc:
            raise FetchError(
                f"the origin could not be reached: {_reason(exc)}"
            ) from None
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


async def _read(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    if response.content_length is not None and response.content_length > max_bytes:
        raise FetchError(
            f"the origin's file is {response.content_length} bytes; at most {max_bytes} are accepted"
        )
    data = bytearray()
    async for chunk in response.content.iter_chunked(65536):
        data += chunk
        if len(data) > max_bytes:
            raise FetchError(f"the origin's file is over {max_bytes} bytes")
    return bytes(data)


def _reason(exc: Any) -> str:
    os_error = getattr(exc, "os_error", None)
    return str(os_error) if os_error is not None else type(exc).__name__
