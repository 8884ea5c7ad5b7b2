"""Fetch an original from an origin URL without becoming an SSRF proxy.

- only http and https; no credentials in the URL; the host on the allow-list
  when one is configured;
- every address a host resolves to must be public: private, loopback,
  link-local, multicast and reserved ranges are refused *after* resolution, by
  the resolver aiohttp connects through, so DNS rebinding cannot slip past;
  IP-literal hosts (which aiohttp does not resolve) are checked up front;
- an IPv6 address that carries an IPv4 one is judged by where packets go:
  mapped, NAT64 and 6to4 by the IPv4 they embed; the rest refused outright;
- a name that does not resolve and a name with a non-public address fail with
  the same words, so a tenant cannot map internal DNS through ingest errors;
- redirects are followed by hand, each hop checked again; bytes and time bounded.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
from collections.abc import Collection
from typing import Final, TypeAlias

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from gateway.hostnames import ipv4_spelled

__all__ = [
    "MAX_ORIGIN_LENGTH",
    "UNREACHABLE",
    "FetchError",
    "GuardedResolver",
    "OriginPolicy",
    "check_origin",
    "fetch_origin",
    "guarded_session",
]

MAX_REDIRECTS: Final = 5
# Room for a presigned URL's query (a session token runs to thousands of
# characters); a web server's request line is bounded alike.
MAX_ORIGIN_LENGTH: Final = 8192
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})

# One reason for "no such name" and "a name for an internal address": told
# apart, they would let a tenant probe which internal names exist.
UNREACHABLE: Final = (
    "the origin's host cannot be reached from here"
    " (an unknown name, or a non-public address)"
)

_Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


def _networks(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# The IANA special-purpose registries, written out rather than left to
# `is_global` alone: the stdlib's tables changed between patch releases
# (3.11.10, 3.12.4, 3.13), and a guard must not move with the interpreter.
_NOT_PUBLIC_V4: Final = _networks(
    "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the local host on Linux
    "10.0.0.0/8",
    "100.64.0.0/10",  # carrier-grade NAT, the provider's side of it
    "127.0.0.0/8",
    "169.254.0.0/16",  # link-local, where cloud metadata lives
    "172.16.0.0/12",
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # documentation
    "192.88.99.0/24",  # 6to4 relay anycast, deprecated (RFC 7526)
    "192.168.0.0/16",
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation
    "203.0.113.0/24",  # documentation
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and the broadcast address
)
# Only 2000::/3 is global unicast; the rest of the space is loopback, ULA
# (fc00::/7), link- and site-local (fe80::/10, fec0::/10), multicast, discard,
# local-use NAT64 and unallocated blocks.
_GLOBAL_UNICAST_V6: Final = ipaddress.ip_network("2000::/3")
_NOT_PUBLIC_V6: Final = _networks(
    "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID
    "2001:db8::/32",  # documentation
    "3fff::/20",  # documentation (RFC 9637)
)
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 host that packets to `ip` are delivered to, when it says which.

    Unwrapped: IPv4-mapped (a dual-stack socket connects to the IPv4 address),
    NAT64 64:ff9b::/96 (a translator connects to it; DNS64 hands these out for
    every IPv4-only origin on an IPv6-only host) and 6to4 2002::/16 (the
    IPv4 address is the site's router). Refused outright, by not being global
    unicast: IPv4-compatible ::/96 (deprecated, RFC 4291 2.5.5.1, and ::,
    ::1), IPv4-translated ::ffff:0:0:0/96 (obsolete SIIT), local-use NAT64
    64:ff9b:1::/48 (where the IPv4 sits depends on the operator's prefix
    length) and Teredo 2001::/32 (the client address is obfuscated, the relay
    anyone's).
    """
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _public(ip: _Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return _public(embedded)
        if ip not in _GLOBAL_UNICAST_V6 or any(ip in n for n in _NOT_PUBLIC_V6):
            return False
    elif any(ip in n for n in _NOT_PUBLIC_V4):
        return False
    # The stdlib's view as a second opinion: refused when either says so.
    return ip.is_global and not ip.is_multicast


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
        """Whether `address` (as a resolver reports it, maybe with a zone) is fetched."""
        if self.allow_private:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        return _public(ip)


def check_origin(raw: str, policy: OriginPolicy) -> URL:
    """The URL, or `FetchError` saying why it may not be fetched."""
    if len(raw) > MAX_ORIGIN_LENGTH:
        # Stored with the image and shown in its document: bounded.
        raise FetchError(f"the URL is longer than {MAX_ORIGIN_LENGTH} characters")
    if _CONTROL.search(raw):
        # Stored as given: PostgreSQL's text holds no NUL, and no URL holds
        # any control character.
        raise FetchError("not a URL: it holds a control character")
    url = _parse(raw)
    host = _host(url) if url.raw_host else None
    if url.scheme not in ("http", "https") or not url.raw_host or not host:
        raise FetchError("only absolute http and https URLs can be ingested")
    if not _valid_host(host):
        raise FetchError("the host is not a valid name or address")
    if url.user is not None or url.password is not None:
        raise FetchError("credentials in the URL are not accepted")
    # The literal checks read raw_host: it is what aiohttp hands the socket.
    literal = _literal(url.raw_host)
    # The ASCII form, as the allow-list is written (`xn--` for an IDN).
    if not policy.host_allowed(url.raw_host):
        raise FetchError(f"host {host!r} is not on the ingest allow-list")
    if literal is not None and not policy.address_allowed(str(literal)):
        raise FetchError(
            "the address is not a public one (private, loopback, link-local,"
            " multicast or reserved, or an IPv6 address carrying such an IPv4)"
        )
    return url


def _parse(raw: str) -> URL:
    # yarl raises ValueError for a bad port or bracket, UnicodeError (a
    # ValueError) for a host IDNA cannot encode, IndexError for `http://[]@`.
    try:
        return URL(raw)
    except (ValueError, TypeError, IndexError):
        raise FetchError("not a URL") from None


def _host(url: URL) -> str | None:
    """`url.host`, which yarl decodes from IDNA on reading and so may raise."""
    try:
        return url.host
    except UnicodeError:  # `xn--a`, `xn--`: punycode that decodes to no name
        raise FetchError(
            "the host is not a valid internationalised (xn--) name"
        ) from None


def _literal(host: str) -> _Address | None:
    """The address an IP-literal host names; None for a DNS name.

    aiohttp connects to IP literals without calling the resolver, so every
    host it would take for one must be parsed here, or refused.
    """
    if ":" in host:
        if "%" in host:
            # A zone names one of our interfaces: only meaningful for
            # link-local addresses, which are never fetched.
            raise FetchError("IPv6 zone ids are not accepted")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise FetchError("the host is not a valid name or address") from None
    try:
        return ipv4_spelled(host)
    except ValueError:
        raise FetchError(
            "an IPv4 address must be written as four decimal numbers (a.b.c.d)"
        ) from None


def _valid_host(host: str) -> bool:
    """RFC 1035 lengths, checked on the IDNA form that DNS would see."""
    if host.startswith("[") or ":" in host:
        return True  # an IPv6 literal; `_literal` parses it
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.rstrip(".").split(".")
    return len(ascii_host) <= 253 and all(0 < len(label) <= 63 for label in labels)


class _UnreachableError(OSError):
    """A host that failed resolution or the address policy (the same to tenants)."""

    def __init__(self) -> None:
        super().__init__(UNREACHABLE)


class GuardedResolver(AbstractResolver):
    """Resolves as usual, then refuses hosts with any non-public address."""

    def __init__(self, policy: OriginPolicy) -> None:
        self._policy = policy
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            results = await self._resolver.resolve(host, port, family)
        except OSError:  # socket.gaierror included: "no such name"
            raise _UnreachableError from None
        # Any one non-public address refuses the host: aiohttp tries them all.
        if not results or not all(
            self._policy.address_allowed(r["host"]) for r in results
        ):
            raise _UnreachableError
        return results

    async def close(self) -> None:
        await self._resolver.close()


def guarded_session(policy: OriginPolicy) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy), limit=16)
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": "image-gateway ingest"},
        # A proxy from HTTP(S)_PROXY would be the only address resolved and
        # checked, and would then fetch any host it is asked for.
        trust_env=False,
    )


async def fetch_origin(
    session: aiohttp.ClientSession,
    raw: str,
    policy: OriginPolicy,
    *,
    max_bytes: int,
    seconds: float,
) -> tuple[bytes, str]:
    """The origin's bytes and the file name its final URL suggests.

    `seconds` bounds the whole fetch: each hop's resolution (and so the
    address checks), connection and answer, and the body.
    """
    url = check_origin(raw, policy)
    try:
        # One deadline: a ClientTimeout per request granted every redirect
        # hop the whole budget again, six times it in all.
        async with asyncio.timeout(seconds):
            return await _follow(session, url, policy, max_bytes)
    except TimeoutError:  # the deadline passed
        raise FetchError(f"the origin took longer than {seconds:g} s") from None
    except aiohttp.ClientError as exc:
        raise _failure(exc) from None


# The deadline in `fetch_origin` bounds each request; the session's default
# (5 minutes a request) would cut a longer GATEWAY_INGEST_TIMEOUT short.
_NO_CLIENT_TIMEOUT: Final = aiohttp.ClientTimeout()


async def _follow(
    session: aiohttp.ClientSession, url: URL, policy: OriginPolicy, max_bytes: int
) -> tuple[bytes, str]:
    for _ in range(MAX_REDIRECTS + 1):
        async with session.get(
            url, allow_redirects=False, timeout=_NO_CLIENT_TIMEOUT
        ) as response:
            if response.status in _REDIRECTS:
                url = _redirect(url, response.headers.get("Location"), policy)
                continue
            if response.status != 200:
                raise FetchError(f"the origin answered {response.status}")
            return await _read(response, max_bytes), url.name or "origin"
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _redirect(url: URL, location: str | None, policy: OriginPolicy) -> URL:
    """Where a redirect from `url` leads, checked as the origin was.

    The Location is the origin's to choose: one yarl cannot parse is the
    origin's failure, not ours.
    """
    if not location:
        raise FetchError("a redirect without a Location")
    try:
        target = str(url.join(URL(location)))
    except (ValueError, TypeError, IndexError):  # as in `_parse`
        raise FetchError("the origin redirected to an invalid URL") from None
    try:
        return check_origin(target, policy)
    except FetchError as exc:
        raise FetchError(f"the origin's redirect was refused: {exc}") from None


def _failure(exc: aiohttp.ClientError) -> FetchError:
    """What is recorded for a failure aiohttp reports: our words, not its
    class name, and nothing that tells an unknown name from an internal one."""
    match exc:
        case aiohttp.ClientConnectorError(os_error=_UnreachableError()):
            # The resolver's own wording ("Name or service not known") would
            # tell the two cases apart again; os_error, unlike aiohttp 3.11's
            # ClientConnectorDNSError, is there in every aiohttp we accept.
            return FetchError(UNREACHABLE)
        case aiohttp.ClientSSLError():
            # Its os_error is OpenSSL's: an errno that is no system one.
            return FetchError("the origin's TLS handshake or certificate was refused")
        case aiohttp.ClientConnectorError():
            why = _why(getattr(exc, "os_error", None))
            return FetchError(f"the origin could not be reached: {why}")
        case aiohttp.ServerDisconnectedError():
            return FetchError("the origin closed the connection without an answer")
        case aiohttp.ClientPayloadError():
            return FetchError("the origin's body is malformed or cut short")
        case aiohttp.TooManyRedirects():
            # Not raised while redirects are followed by hand, as they are.
            return FetchError(f"more than {MAX_REDIRECTS} redirects")
        case aiohttp.ClientResponseError():
            # A status line, header or framing aiohttp's parser refused (a
            # Content-Length that is not a number, a header over 8 KiB, ...).
            return FetchError(
                "the origin's answer is not valid HTTP (its status line, headers or"
                " content encoding)"
            )
        case aiohttp.InvalidURL():
            return FetchError("the URL cannot be fetched")
        case OSError():  # a reset mid-answer, ...
            return FetchError(f"the connection to the origin failed: {_why(exc)}")
        case aiohttp.ClientConnectionError():
            return FetchError("the connection to the origin failed")
        case _:
            return FetchError(f"the origin could not be fetched ({type(exc).__name__})")


def _why(error: OSError | None) -> str:
    """The system's words for a socket error, never its message: asyncio's
    name the address a host resolved to ("Connect call failed ('10.0.0.5',
    80)"), which is not the tenant's to learn."""
    if error is None:
        return "no reason given"
    if error.errno:
        return os.strerror(error.errno)
    return type(error).__name__


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
