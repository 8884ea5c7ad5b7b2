"""The SSRF guard: which addresses an origin may have, and what a tenant is told."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence

import pytest
from yarl import URL

from gateway import Settings
from gateway.originals import origin_fetch
from gateway.originals.origin_fetch import (
    FetchError,
    GuardedResolver,
    OriginPolicy,
    check_origin,
    fetch_origin,
    guarded_session,
)

PUBLIC = OriginPolicy((), allow_private=False)


# The IPv4 addresses each embedding carries: what a tenant would aim at.
TARGETS: Mapping[str, str] = {
    "loopback": "127.0.0.1",
    "private-10": "10.0.0.1",
    "private-172": "172.16.0.1",
    "private-192": "192.168.0.1",
    "metadata": "169.254.169.254",
    "public": "8.8.8.8",
}


def _mapped(v4: ipaddress.IPv4Address) -> int:
    return 0xFFFF << 32 | int(v4)


def _nat64(v4: ipaddress.IPv4Address) -> int:
    return 0x64FF9B << 96 | int(v4)


def _nat64_local(v4: ipaddress.IPv4Address) -> int:
    return 0x64FF9B0001 << 80 | int(v4)


def _sixtofour(v4: ipaddress.IPv4Address) -> int:
    return 0x2002 << 112 | int(v4) << 80 | 1


def _compatible(v4: ipaddress.IPv4Address) -> int:
    return int(v4)


def _translated(v4: ipaddress.IPv4Address) -> int:
    return 0xFFFF << 48 | int(v4)


def _teredo(v4: ipaddress.IPv4Address) -> int:
    # The address as both server and (obfuscated, RFC 4380 section 4) client.
    return 0x20010000 << 96 | int(v4) << 64 | (int(v4) ^ 0xFFFFFFFF)


# name: (builder, True: the IPv4 is unwrapped and checked; False: refused outright)
EMBEDDINGS: Mapping[str, tuple[Callable[[ipaddress.IPv4Address], int], bool]] = {
    "mapped": (_mapped, True),
    "nat64": (_nat64, True),
    "6to4": (_sixtofour, True),
    "nat64-local-use": (_nat64_local, False),
    "ipv4-compatible": (_compatible, False),
    "ipv4-translated": (_translated, False),
    "teredo": (_teredo, False),
}


def _embedded_table() -> Iterator[tuple[str, str, bool]]:
    """(case id, the IPv6 address, whether it may be fetched)."""
    for name, (build, unwrapped) in EMBEDDINGS.items():
        for target, v4 in TARGETS.items():
            address = ipaddress.IPv6Address(build(ipaddress.IPv4Address(v4)))
            yield f"{name}-{target}", str(address), unwrapped and target == "public"


EMBEDDED_TABLE = list(_embedded_table())
EMBEDDED = [pytest.param(a, ok, id=case) for case, a, ok in EMBEDDED_TABLE]


@pytest.mark.parametrize(("address", "allowed"), EMBEDDED)
def test_an_ipv6_address_is_judged_by_the_ipv4_it_embeds(
    address: str, allowed: bool
) -> None:
    assert PUBLIC.address_allowed(address) is allowed


@pytest.mark.parametrize(("address", "allowed"), EMBEDDED)
def test_an_ipv6_literal_is_judged_by_the_ipv4_it_embeds(
    address: str, allowed: bool
) -> None:
    url = f"http://[{address}]/a.jpg"
    if allowed:
        assert check_origin(url, PUBLIC).host == address
    else:
        with pytest.raises(FetchError, match="not a public"):
            check_origin(url, PUBLIC)


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("0.0.0.0", id="this-host-v4"),  # noqa: S104 (the point of the test)
        pytest.param("0.1.2.3", id="this-network"),
        pytest.param("::", id="unspecified-v6"),
        pytest.param("::1", id="loopback-v6"),
        pytest.param("100.64.0.1", id="shared-cgnat"),
        pytest.param("192.0.0.9", id="ietf-protocol-v4"),
        pytest.param("192.0.2.1", id="documentation-v4"),
        pytest.param("198.18.0.1", id="benchmark-v4"),
        pytest.param("192.88.99.1", id="6to4-relay-anycast"),
        pytest.param("240.0.0.1", id="reserved-v4"),
        pytest.param("255.255.255.255", id="broadcast"),
        pytest.param("224.0.0.1", id="multicast-v4"),
        pytest.param("239.255.255.250", id="multicast-v4-admin"),
        pytest.param("fc00::1", id="unique-local-fc"),
        pytest.param("fd12:3456::1", id="unique-local-fd"),
        pytest.param("fec0::1", id="site-local"),
        pytest.param("fe80::1", id="link-local-v6"),
        pytest.param("fe80::1%eth0", id="link-local-zone"),
        pytest.param("ff02::1", id="multicast-v6-link"),
        pytest.param("ff0e::1", id="multicast-v6-global"),
        pytest.param("100::1", id="discard-only"),
        pytest.param("2001:2::1", id="benchmark-v6"),
        pytest.param("2001:10::1", id="orchid"),
        pytest.param("2001:db8::1", id="documentation-v6"),
        pytest.param("3fff::1", id="documentation-v6-rfc9637"),
        pytest.param("5f00::1", id="srv6-sid"),
        pytest.param("4000::1", id="unallocated-v6"),
    ],
)
def test_special_purpose_addresses_are_refused(address: str) -> None:
    assert not PUBLIC.address_allowed(address)


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("8.8.8.8", id="public-v4"),
        pytest.param("2606:4700:4700::1111", id="public-v6"),
        pytest.param("2a00:1450:4001::1", id="public-v6-ripe"),
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert PUBLIC.address_allowed(address)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://2130706433/a.jpg", id="decimal"),
        pytest.param("http://0x7f000001/a.jpg", id="hex"),
        pytest.param("http://0x7f.1/a.jpg", id="hex-two-parts"),
        pytest.param("http://017700000001/a.jpg", id="octal"),
        pytest.param("http://0177.0.0.1/a.jpg", id="octal-dotted"),
        pytest.param("http://127.1/a.jpg", id="short-dotted"),
        pytest.param("http://127.0.0.1./a.jpg", id="trailing-dot"),
        pytest.param("http://8.8.8.010/a.jpg", id="leading-zero-public"),
        pytest.param("http://%31%32%37.0.0.1/a.jpg", id="percent-encoded"),
    ],
)
def test_ipv4_addresses_must_be_written_as_four_decimals(url: str) -> None:
    with pytest.raises(FetchError, match="four decimal numbers"):
        check_origin(url, PUBLIC)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://[fe80::1%25eth0]/a.jpg", id="link-local"),
        pytest.param("http://[2606:4700:4700::1111%25eth0]/a.jpg", id="public"),
    ],
)
def test_ipv6_zone_ids_are_refused(url: str) -> None:
    with pytest.raises(FetchError, match="zone"):
        check_origin(url, PUBLIC)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://\uff11\uff12\uff17.0.0.1/a.jpg", id="fullwidth-digits"),
        pytest.param("http://[::ffff:7f00:1]/a.jpg", id="mapped-hex"),
        pytest.param("http://[0:0:0:0:0:ffff:127.0.0.1]/a.jpg", id="mapped-long"),
        pytest.param("http://0.0.0.0/a.jpg", id="this-host"),
        pytest.param("http://[::]/a.jpg", id="unspecified-v6"),
    ],
)
def test_other_spellings_of_local_addresses_are_refused(url: str) -> None:
    with pytest.raises(FetchError, match="not a public"):
        check_origin(url, PUBLIC)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://xn--a.com/x.jpg", id="punycode-of-no-character"),
        pytest.param("http://xn--/", id="empty-punycode"),
        pytest.param("http://a.xn--/x.jpg", id="empty-punycode-last-label"),
        pytest.param("http://XN--A.com/x.jpg", id="upper-case-prefix"),
        pytest.param("http://xn--a.com./x.jpg", id="trailing-dot"),
    ],
)
def test_a_malformed_internationalised_host_is_refused(url: str) -> None:
    """yarl decodes an xn-- host when it is read, and raised UnicodeError."""
    with pytest.raises(FetchError, match=r"not a valid internationalised \(xn--\)"):
        check_origin(url, PUBLIC)


def test_a_well_formed_internationalised_host_is_a_name() -> None:
    assert check_origin("http://xn--bcher-kva.example/a.jpg", PUBLIC).host == (
        "bücher.example"
    )


def test_a_numeric_looking_name_that_is_not_the_last_label_is_a_name() -> None:
    assert check_origin("http://0x7f.example.com/a.jpg", PUBLIC).host == (
        "0x7f.example.com"
    )


# After DNS: a fake getaddrinfo stands in for the resolver's system call.

DNS: Mapping[str, Sequence[str]] = {
    "internal.test": ("10.0.0.1",),
    "mixed.test": ("8.8.8.8", "192.168.0.7"),
    "public.test": ("8.8.8.8", "2606:4700:4700::1111"),
    **{f"{case}.test": (address,) for case, address, _ in EMBEDDED_TABLE},
}


@pytest.fixture
def dns() -> Mapping[str, Sequence[str]]:
    return DNS


@pytest.mark.usefixtures("fake_dns")
@pytest.mark.parametrize(
    ("name", "address", "allowed"),
    [pytest.param(f"{c}.test", a, ok, id=c) for c, a, ok in EMBEDDED_TABLE],
)
async def test_a_name_resolving_to_an_embedded_address_is_judged_by_its_ipv4(
    name: str, address: str, allowed: bool
) -> None:
    resolver = GuardedResolver(PUBLIC)
    try:
        if allowed:
            results = await resolver.resolve(name, 80, socket.AF_UNSPEC)
            assert [r["host"] for r in results] == [address]
        else:
            with pytest.raises(OSError, match="cannot be reached"):
                await resolver.resolve(name, 80, socket.AF_UNSPEC)
    finally:
        await resolver.close()


@pytest.mark.usefixtures("fake_dns")
async def test_a_name_with_any_non_public_address_is_refused() -> None:
    resolver = GuardedResolver(PUBLIC)
    try:
        assert len(await resolver.resolve("public.test", 80, socket.AF_UNSPEC)) == 2
        with pytest.raises(OSError, match="cannot be reached"):
            await resolver.resolve("mixed.test", 80, socket.AF_UNSPEC)
    finally:
        await resolver.close()


async def _fetch_error(
    url: str, policy: OriginPolicy = PUBLIC, *, seconds: float = 1.0
) -> str:
    """What fetching `url` under `policy` fails with."""
    async with guarded_session(policy) as session:
        with pytest.raises(FetchError) as caught:
            await fetch_origin(session, url, policy, max_bytes=1000, seconds=seconds)
    return str(caught.value)


@pytest.mark.usefixtures("fake_dns")
async def test_an_unknown_name_and_an_internal_name_fail_with_the_same_words() -> None:
    unknown = await _fetch_error("http://nowhere.test/a.jpg")
    internal = await _fetch_error("http://internal.test/a.jpg")
    mixed = await _fetch_error("http://mixed.test/a.jpg")
    assert unknown == internal == mixed
    assert "nowhere" not in unknown
    assert unknown == origin_fetch.UNREACHABLE


_LISTED = OriginPolicy(
    Settings.from_env(
        {
            "GATEWAY_INGEST_ALLOWED_HOSTS": "example.org, .cdn.example,"
            " xn--bcher-kva.example, .café.example, 93.184.215.14"
        }
    ).ingest.allowed_hosts,
    allow_private=False,
)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://example.org/a.jpg", True),
        ("https://EXAMPLE.org./a.jpg", True),
        ("https://img.example.org/a.jpg", False),
        ("https://example.org.evil.example/a.jpg", False),
        ("https://img.cdn.example/a.jpg", True),
        ("https://a.b.cdn.example/a.jpg", True),
        ("https://cdn.example/a.jpg", False),  # subdomains only
        ("https://evilcdn.example/a.jpg", False),
        ("https://xn--bcher-kva.example/a.jpg", True),
        ("https://Bücher.example/a.jpg", True),  # the same host, as written
        ("https://bucher.example/a.jpg", False),
        ("https://img.café.example/a.jpg", True),
        ("https://img.xn--caf-dma.example/a.jpg", True),
        ("https://café.example/a.jpg", False),  # subdomains only
        ("https://93.184.215.14/a.jpg", True),
        ("https://93.184.215.15/a.jpg", False),
    ],
)
def test_the_allow_list_admits_its_hosts_and_their_forms_only(
    origin: str, allowed: bool
) -> None:
    if allowed:
        check_origin(origin, _LISTED)
    else:
        with pytest.raises(FetchError, match="not on the ingest allow-list"):
            check_origin(origin, _LISTED)


# An origin that answers what a test scripts, malformed HTTP included.

PRIVATE = OriginPolicy((), allow_private=True)  # the scripted origin is on loopback


def _redirect(location: bytes) -> bytes:
    return (
        b"HTTP/1.1 302 Found\r\nLocation: "
        + location
        + b"\r\nContent-Length: 0\r\n\r\n"
    )


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[URL, list[bytes]]]:
    """A loopback origin sending, whatever it is asked, the bytes the test put
    in the list, then closing. aiohttp's own server cannot be made to send a
    malformed status line, header or body."""
    answer: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer[0])
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up first: what some cases are about
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield (
            URL.build(scheme="http", host="127.0.0.1", port=port, path="/a.jpg"),
            answer,
        )
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(
            _redirect(b"http://xn--a/"),
            "the origin's redirect was refused: the host is not a valid"
            " internationalised (xn--) name",
            id="redirect-to-malformed-punycode",
        ),
        pytest.param(
            _redirect(b"http://["),
            "the origin redirected to an invalid URL",
            id="redirect-to-open-bracket",
        ),
        pytest.param(
            _redirect(b"http://a:99999/"),
            "the origin redirected to an invalid URL",
            id="redirect-to-port-out-of-range",
        ),
        pytest.param(
            _redirect(b"http://[]@x/"),
            "the origin redirected to an invalid URL",
            id="redirect-to-empty-brackets",
        ),
        pytest.param(
            _redirect(b"http://\xff\xfe/"),
            "the origin redirected to an invalid URL",
            id="redirect-to-bytes-not-utf8",
        ),
        pytest.param(
            _redirect(b"ftp://example.com/a.jpg"),
            "the origin's redirect was refused: only absolute http and https",
            id="redirect-to-ftp",
        ),
        pytest.param(
            b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n",
            "a redirect without a Location",
            id="redirect-without-location",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nabc",
            "the origin's answer is not valid HTTP",
            id="content-length-not-a-number",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\nabc",
            "the origin's answer is not valid HTTP",
            id="content-length-negative",
        ),
        pytest.param(
            b"HTTP/1.1 abc OK\r\n\r\n",
            "the origin's answer is not valid HTTP",
            id="status-not-a-number",
        ),
        pytest.param(
            b"garbage\r\n\r\n",
            "the origin's answer is not valid HTTP",
            id="no-status-line",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX: " + b"a" * 10000 + b"\r\n\r\n",
            "the origin's answer is not valid HTTP",
            id="header-over-8-kib",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
            "the origin's answer is not valid HTTP",
            id="chunk-size-not-hex",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            "the origin's body is malformed or cut short",
            id="body-shorter-than-content-length",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
            "the origin's body is malformed or cut short",
            id="gzip-that-is-not",
        ),
        pytest.param(
            b"",
            "the origin closed the connection without an answer",
            id="closed-at-once",
        ),
    ],
)
async def test_a_hostile_answer_is_a_fetch_error_saying_why(
    scripted: tuple[URL, list[bytes]], answer: bytes, reason: str
) -> None:
    """Each was a ValueError (a traceback, "an unexpected error occurred") or
    a FetchError naming an aiohttp class."""
    url, script = scripted
    script.append(answer)
    assert (await _fetch_error(str(url), PRIVATE, seconds=5.0)).startswith(reason)


async def test_a_content_type_the_origin_makes_up_is_no_failure(
    scripted: tuple[URL, list[bytes]],
) -> None:
    """The media type is learnt by decoding the image, never from the header."""
    url, script = scripted
    script.append(
        b"HTTP/1.1 200 OK\r\nContent-Type: ;;=\xff/\r\nContent-Length: 3\r\n\r\nabc"
    )
    async with guarded_session(PRIVATE) as session:
        data = await fetch_origin(
            session, str(url), PRIVATE, max_bytes=1000, seconds=5.0
        )
    assert data == (b"abc", "a.jpg")


async def test_a_refused_connection_says_so_without_the_address() -> None:
    """asyncio's message names the address the host resolved to: not the
    tenant's to learn (an internal one, where private origins are allowed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: refused
    refused = await _fetch_error(f"http://127.0.0.1:{port}/a.jpg", PRIVATE, seconds=5.0)
    assert refused == "the origin could not be reached: Connection refused"


async def test_a_tls_failure_says_so() -> None:
    """OpenSSL's error numbers are no system ones: os.strerror(1) of a TLS
    failure read "Operation not permitted"."""

    async def plain(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(plain, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        refused = await _fetch_error(
            f"https://127.0.0.1:{port}/a.jpg", PRIVATE, seconds=5.0
        )
    finally:
        server.close()
        await server.wait_closed()
    assert refused == "the origin's TLS handshake or certificate was refused"
