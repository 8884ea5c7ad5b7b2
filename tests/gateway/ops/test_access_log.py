"""The access log: one JSON line per request, no secret in any of them."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from unittest import mock
from urllib.parse import quote, unquote_plus

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_urldispatcher import UrlMappingMatchInfo
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.keys import ISSUER
from gateway.ops import access_log
from gateway.ops.access_log import (
    _LOGGED_AGENT,
    _LOGGED_PARAMETERS,
    _LOGGED_TARGET,
    JsonAccessLogger,
    client_address,
    holds_credential,
    redacted_path,
    redacted_query,
    redacted_target,
)
from tests.gateway.ops.conftest import Served

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl-_"
KEY = "sk_0123456789ab_" + "k" * 43


@pytest.mark.parametrize(
    ("query", "logged"),
    [
        pytest.param("token=eyJ.abc.def", "token=…", id="token"),
        pytest.param("a=1&token=x&b=2", "a=1&token=…&b=2", id="among-others"),
        pytest.param("TOKEN=x&api_key=y", "TOKEN=…&api_key=…", id="any-case-and-keys"),
        pytest.param("mytoken=x", "mytoken=x", id="only-whole-names"),
        pytest.param("sort=-createdAt", "sort=-createdAt", id="harmless"),
        pytest.param(
            "__cld_token__=exp=1~hmac=ab", "__cld_token__=…", id="cloudinary-token"
        ),
        pytest.param("token=a=b&&sig=", "token=…&&sig=…", id="odd-separators"),
        pytest.param("token&x=1", "token&x=1", id="no-value"),
        # The handlers read names decoded: so does the redaction.
        pytest.param("tok%65n=x", "token=…", id="encoded-name"),
        pytest.param("a=1&token%3Dx", "a=1&token=…", id="encoded-equals"),
        pytest.param("api%5Fkey=x", "api_key=…", id="encoded-underscore"),
        pytest.param("a+b=c+d&x=%41", "a+b=c+d&x=%41", id="encoded-harmless"),
        pytest.param("token=x%3Dy=z", "token=…", id="escaped-equals-in-the-value"),
    ],
)
def test_secret_parameters_are_redacted(query: str, logged: str) -> None:
    assert redacted_query(query) == logged


def test_a_local_cdn_urls_signature_is_redacted() -> None:
    path = "/cdn/local/image/authenticated/s--AbC_-123--/c_fit,w_5/v1/x.jpg"
    assert redacted_path(path) == (
        "/cdn/local/image/authenticated/s--…--/c_fit,w_5/v1/x.jpg"
    )


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        pytest.param("/status", "/status", id="path"),
        pytest.param("/images/a?token=x.y.z", "/images/a?token=…", id="query"),
        pytest.param("/a%20b?q=%41", "/a%20b?q=%41", id="as-received"),
        pytest.param("/x?", "/x?", id="empty-query"),
        pytest.param(
            "/cdn/c/image/upload/s--AbC--/v1/x.jpg?__cld_token__=t",
            "/cdn/c/image/upload/s--…--/v1/x.jpg?__cld_token__=…",
            id="signed-cdn-url",
        ),
        # aiohttp routes the decoded path: an encoded signature opens the
        # same picture, so it is found decoded, and the path logged decoded.
        pytest.param(
            "/cdn/c/image/upload/s%2D-AbC-%2D/v1/x.jpg",
            "/cdn/c/image/upload/s--…--/v1/x.jpg",
            id="encoded-signature",
        ),
        # Escaped in part only, the plain `s--` found first: the signature
        # still opens the picture once the path is decoded.
        pytest.param(
            "/cdn/c/image/upload/s--AbC%2D-/v1/x.jpg",
            "/cdn/c/image/upload/s--…--/v1/x.jpg",
            id="signature-with-an-escaped-end",
        ),
        pytest.param(
            "/cdn/c/image/upload/s--%41bC--/v1/x.jpg",
            "/cdn/c/image/upload/s--…--/v1/x.jpg",
            id="signature-with-an-escaped-letter",
        ),
        pytest.param(
            "/cdn/c/image/upload%2Fs--AbC--/v1/x.jpg",
            "/cdn/c/image/upload/s--…--/v1/x.jpg",
            id="signature-after-an-escaped-slash",
        ),
        pytest.param(
            "/cdn/c/image/upload/s--AbC--/s--DeF--/v1/x.jpg",
            "/cdn/c/image/upload/s--…--/s--…--/v1/x.jpg",
            id="two-signatures",
        ),
        # A token or key no handler reads is a credential all the same.
        pytest.param(
            f"/images/a?x=1;token={JWT}", "/images/a?x=1;token=…", id="semicolon"
        ),
        pytest.param(f"/images/a?token[]={JWT}", "/images/a?token[]=…", id="brackets"),
        pytest.param(
            f"/v1/images?a=1?token={JWT}&b=2",
            "/v1/images?a=1?token=…&b=2",
            id="in-a-value",
        ),
        pytest.param(
            f"/images/a?next=https%3A%2F%2Fx%2F%3Ft%3D{JWT}",
            "/images/a?next=https://x/?t=…",
            id="in-an-encoded-url",
        ),
        pytest.param(
            "/images/a?x=%65yJhbGciOiJIUzI1NiJ9%2EeyJpc3MiOiJ4In0%2Esig",
            "/images/a?x=…",
            id="escaped-letters",
        ),
        pytest.param(
            "/images/a?x=%2565yJhbGciOiJIUzI1NiJ9%252EeyJpc3MiOiJ4In0%252Esig",
            "/images/a?x=…",
            id="escaped-twice",
        ),
        pytest.param(
            "/images/a?x=%252565yJhbGciOiJIUzI1NiJ9%25252EeyJpc3MiOiJ4In0%25252Esig",
            "/images/a?x=…",
            id="escaped-three-times",
        ),
        pytest.param(f"/images/{JWT}", "/images/…", id="in-the-path"),
        pytest.param(f"/v1/images?x={KEY}", "/v1/images?x=…", id="api-key"),
        pytest.param(
            f"/v1/images?a=x_{KEY}&b=1{KEY}",
            "/v1/images?a=x_…&b=1…",
            id="key-after-a-word",
        ),
        pytest.param(
            "/v1/images?a=ewogICJhbGciOiAiSFMyNTYiCn0.eyJpc3MiOiJ4In0.c2ln",
            "/v1/images?a=…",
            id="pretty-printed-header",
        ),
        pytest.param(
            "/v1/images?a=ewogICJhbGciOiAiSFMyNTYiCn0.ewogICJpc3MiOiAieCIKfQ.c2ln",
            "/v1/images?a=…",
            id="pretty-printed-header-and-payload",
        ),
        pytest.param(
            "/v1/images?filter[search]=risk_level_ab_cd",
            "/v1/images?filter[search]=risk_level_ab_cd",
            id="not-a-key",
        ),
        pytest.param(
            "/v1/images?filter[search]=monkeyJuice.txt&b=eyJ",
            "/v1/images?filter[search]=monkeyJuice.txt&b=eyJ",
            id="not-a-token",
        ),
    ],
)
def test_the_target_is_logged_as_received_without_secrets(
    target: str, logged: str
) -> None:
    assert redacted_target(target) == logged


def test_a_long_target_is_redacted_but_not_remembered() -> None:
    """4,096 remembered targets of 50 KB (a request line's bound) would hold
    hundreds of megabytes per worker: only short ones are remembered."""
    from gateway.ops.access_log import _remembered_target

    before = _remembered_target.cache_info().currsize
    assert redacted_target(f"/x?a={'b' * 3000}&token={JWT}").endswith("&token=…")
    assert _remembered_target.cache_info().currsize == before
    assert redacted_target(f"/x?token={JWT}") == "/x?token=…"
    assert _remembered_target.cache_info().currsize == before + 1


def test_a_target_is_logged_up_to_a_bound_and_read_no_further() -> None:
    """Redaction reads what it logs: a 50 KB target is cut, and says how long it was."""
    target = "/images/a?q=" + "%41/" * 12_000
    logged = redacted_target(target)
    assert logged.startswith("/images/a?q=%41/%41/")
    assert logged.endswith(f"…[{len(target)} characters]")
    assert len(logged) <= _LOGGED_TARGET + 32


# Cuts falling before, inside and after each part of a credential.
@pytest.mark.parametrize("shift", [-40, -17, -5, -1, 0, 1, 3, 16, 30, 200])
@pytest.mark.parametrize(
    ("credential", "secret"),
    [
        pytest.param("sk_0123456789ab_" + "Zq9" * 15, "Zq9Zq9Z", id="api-key"),
        pytest.param(JWT, "c2lnbmF0", id="jwt-signature"),
    ],
)
def test_no_part_of_a_secret_is_left_where_the_cut_falls(
    shift: int, credential: str, secret: str
) -> None:
    """A key cut short of its full shape would not be recognised by it: the
    cut moves back to before the run of credential characters it falls in."""
    start = _LOGGED_TARGET - len(credential) + shift
    target = "/x?a=" + "b" * (start - 5) + "/" + credential + "&c=" + "d" * 9000
    logged = redacted_target(target)
    assert secret not in logged
    assert logged.endswith(f"…[{len(target)} characters]")


def test_past_the_parameters_read_the_rest_of_a_query_is_not_logged() -> None:
    query = "&".join(["a=%41"] * _LOGGED_PARAMETERS + [f"x={JWT}", "token=x"])
    logged = redacted_query(query).split("&")
    assert logged == ["a=%41"] * _LOGGED_PARAMETERS + ["…"]


@settings(max_examples=200, deadline=None, database=None)
@given(
    # Where the key starts: anywhere from well before the cut to past it.
    st.integers(_LOGGED_TARGET - 120, _LOGGED_TARGET + 10),
    st.text(st.sampled_from("abcdef0123-_.%&=/;?"), min_size=5000, max_size=7000),
)
def test_a_key_about_the_cut_leaves_nothing_of_its_secret(at: int, filler: str) -> None:
    secret = "Zq9" * 15
    target = f"/x?{filler[: at - 3]}sk_0123456789ab_{secret}{filler[at - 3 :]}"
    assert "Zq9Zq9Z" not in redacted_target(target)


SECRET_NAMES = (
    "token", "key", "api_key", "apikey", "access_token", "signature", "sig", "__cld_token__",
)  # fmt: skip
_values = st.text(st.characters(exclude_characters="&"), max_size=20)
_names = st.one_of(
    st.sampled_from(SECRET_NAMES).flatmap(
        lambda n: st.sampled_from([n, n.upper(), n.capitalize(), quote(n, safe="")])
    ),
    st.text(st.characters(exclude_characters="&="), max_size=10),
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.tuples(_names, _values), min_size=1, max_size=6))
def test_no_secret_value_survives_and_the_rest_is_kept(
    parameters: list[tuple[str, str]],
) -> None:
    query = "&".join(f"{name}={value}" for name, value in parameters)
    logged = redacted_query(query).split("&")
    assert len(logged) == len(parameters)
    for (name, value), line in zip(parameters, logged, strict=True):
        # Read as the handlers read it: decoded, `+` a space.
        decoded = unquote_plus(f"{name}={value}").partition("=")[0]
        if decoded.casefold() in SECRET_NAMES:
            assert line in {f"{name}=…", f"{decoded}=…"}
            assert line.partition("=")[2] == "…"
        else:
            assert line == f"{name}={value}"


class _Request:
    def __init__(self, remote: str, forwarded: str | None) -> None:
        self.remote = remote
        self.headers = CIMultiDict({"X-Forwarded-For": forwarded} if forwarded else {})


PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        pytest.param("203.0.113.9", "1.2.3.4", "203.0.113.9", id="untrusted-peer"),
        pytest.param("10.0.0.2", "1.2.3.4", "1.2.3.4", id="trusted-proxy"),
        pytest.param(
            "10.0.0.2",
            "6.6.6.6, 1.2.3.4, 10.0.0.3",
            "1.2.3.4",
            id="rightmost-untrusted",
        ),
        pytest.param("10.0.0.2", None, "10.0.0.2", id="proxy-without-header"),
        # A hop that is no address is never logged (it could be a token): the
        # nearest address vouched for is.
        pytest.param("10.0.0.2", "garbage", "10.0.0.2", id="unparsable-hop"),
        pytest.param(
            "10.0.0.2", "1.2.3.4, eyJ.x.y, 10.0.0.3", "10.0.0.3", id="broken-chain"
        ),
        pytest.param("10.0.0.2", "1.2.3.4:5678", "1.2.3.4", id="with-a-port"),
        pytest.param("10.0.0.2", "[2001:db8::1]:80", "2001:db8::1", id="ipv6-port"),
        pytest.param("10.0.0.2", "2001:db8::1", "2001:db8::1", id="ipv6"),
        # Only the last 32 hops are read: a client may send thousands.
        pytest.param(
            "10.0.0.2",
            "1.2.3.4, " + ", ".join(["10.0.0.9"] * 31),
            "1.2.3.4",
            id="thirty-second-hop",
        ),
        pytest.param(
            "10.0.0.2",
            "1.2.3.4, " + ", ".join(["10.0.0.9"] * 5000),
            "10.0.0.2",
            id="beyond-the-hops-read",
        ),
        pytest.param(
            "10.0.0.2",
            ", ".join(["10.0.0.9"] * 40 + ["1.2.3.4"]),
            "1.2.3.4",
            id="the-last-hops-are-read",
        ),
        # A peer that is no IP address (a Unix socket's) is no trusted proxy.
        pytest.param("", "1.2.3.4", "", id="unix-socket-peer"),
    ],
)
def test_the_client_is_the_nearest_untrusted_address(
    remote: str, forwarded: str | None, client: str
) -> None:
    request = _Request(remote, forwarded)
    assert client_address(request, PROXIES) == client  # type: ignore[arg-type]


def test_every_x_forwarded_for_header_is_read_in_order() -> None:
    """The client's own header, then the one its proxy added (HAProxy)."""
    request = _Request("10.0.0.2", None)
    request.headers.add("X-Forwarded-For", "192.0.2.66")
    request.headers.add("X-Forwarded-For", "203.0.113.7, 10.0.0.3")
    assert client_address(request, PROXIES) == "203.0.113.7"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        pytest.param(JWT, True, id="token"),
        pytest.param(f"Bearer {KEY}", True, id="api-key"),
        pytest.param("monkeyJuice.txt", False, id="a-word-with-eyJ"),
        pytest.param("they.example", False, id="ey-and-a-dot"),
        pytest.param("sk_live", False, id="sk-prefix-alone"),
        pytest.param("probe/1.0", False, id="harmless"),
    ],
)
def test_a_credential_is_known_by_its_shape(text: str, holds: bool) -> None:
    assert holds_credential(text) is holds


def test_the_served_access_log_is_json_without_secrets(serve: Served) -> None:
    """Through `serve`: a token in the URL and a key in a header reach no line."""
    port = serve(GATEWAY_WORKERS="1")  # one process: the lines in request order
    token = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZQ"
    api_key = "sk_0123456789ab_" + "k" * 43
    base = f"http://127.0.0.1:{port}"
    request_ids = []
    for url, headers in (
        (f"{base}/images/133398b5-c4e1-4488-bbe1-81afd70546ae?token={token}", {}),
        (f"{base}/v1/images", {"Authorization": f"Bearer {api_key}"}),
        (f"{base}/status", {"User-Agent": 'probe "1.0" \\ \xe9'}),
    ):
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                request_ids.append(answer.headers["X-Request-Id"])
        except urllib.error.HTTPError as refused:
            request_ids.append(refused.headers["X-Request-Id"])
    (server,) = serve.processes
    server.terminate()
    output, _ = server.communicate(timeout=10)
    assert token not in output
    assert "c2VjcmV0LXNpZ25hdHVyZQ" not in output
    assert api_key not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if "status" in line]
    assert [line["request_id"] for line in access] == request_ids
    deliver, listing, status = access
    assert deliver["route"] == "deliver"
    assert deliver["path"].endswith("?token=…")
    assert deliver["status"] == 401
    assert listing["status"] == 401
    assert status["user_agent"].startswith('probe "1.0" \\ ')  # escaped, parsed back
    assert status["client"] == "127.0.0.1"
    assert isinstance(status["duration_ms"], float)
    assert all(set(line) >= {"time", "method", "bytes"} for line in access)


def test_a_proxys_own_x_forwarded_for_header_after_the_clients_is_read(
    serve: Served,
) -> None:
    """A proxy may add its header after the one the client wrote (HAProxy's
    `option forwardfor`): the hops of both are read, in order, and the
    client's own header names no one. Only the first was read: the client
    named itself whatever it liked."""
    port = serve(GATEWAY_WORKERS="1", GATEWAY_TRUSTED_PROXIES="127.0.0.1")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"X-Forwarded-For: 192.0.2.66\r\n"  # the client's own
            b"X-Forwarded-For: 203.0.113.7\r\n\r\n"  # the proxy's
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    (server,) = serve.processes
    server.terminate()
    output, _ = server.communicate(timeout=10)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (access,) = [line for line in lines if "status" in line]
    assert access["client"] == "203.0.113.7"


@pytest.mark.parametrize(
    "proxies", [pytest.param("", id="direct"), pytest.param("127.0.0.1", id="proxied")]
)
def test_a_request_aiohttp_could_not_parse_is_one_line_and_no_traceback(
    serve: Served, proxies: str
) -> None:
    """It has no route: its access line said so by raising (a traceback per
    request, and no line). From a trusted proxy, its headers (aiohttp's
    stand-in, a plain dict) were asked for `X-Forwarded-For` and raised too."""
    port = serve(GATEWAY_WORKERS="1", GATEWAY_TRUSTED_PROXIES=proxies)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request"), answer
    (server,) = serve.processes
    server.terminate()
    output, _ = server.communicate(timeout=10)
    assert "Traceback" not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (access,) = [line for line in lines if "status" in line]
    assert (access["status"], access["route"]) == (400, None), access
    assert access["client"] == "127.0.0.1"


def test_other_commands_print_json_and_nothing_else(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "issuer", "list"],
        env={"GATEWAY_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert json.loads(result.stdout) == []


def _logger_into(
    lines: list[str],
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (),
) -> JsonAccessLogger:
    """A connection's access logger whose batches land in `lines`."""

    class _Lines:
        def write(self, text: str) -> None:
            lines.extend(text.splitlines())

        def flush(self) -> None:
            pass

    JsonAccessLogger.configure(trusted_proxies=trusted, stream=_Lines())
    return JsonAccessLogger(logging.getLogger("test"), "")


def _routed(
    target: str,
    *,
    method: str = "GET",
    route: str | None = "deliver",
    peer: str = "10.1.2.3",
    headers: dict[str, str] | None = None,
) -> web.Request:
    """A request as aiohttp hands it to the access log, its route resolved."""
    request = make_mocked_request(
        method,
        target,
        headers=headers or {},
        protocol=mock.Mock(peername=(peer, 5)),
    )
    matched = mock.Mock()
    matched.name = route
    request._match_info = UrlMappingMatchInfo({}, matched)
    return request


async def test_a_line_holds_every_field_of_its_request_and_answer() -> None:
    """The whole line, as a log shipper reads it: each field from its own
    source, the time to the millisecond (UTC) and the duration in ms."""
    lines: list[str] = []
    logger = _logger_into(lines, trusted=PROXIES)
    request = _routed(
        f"/images/a?token={JWT}",
        method="HEAD",
        peer="10.0.0.2",
        headers={"User-Agent": "probe/1.0", "X-Forwarded-For": "192.0.2.7"},
    )
    request[ISSUER] = "issuer-1"
    response = web.Response(status=304, headers={"X-Request-Id": "r-1"})
    with mock.patch("time.time", return_value=1_700_000_000.0429):
        logger.log(request, response, 0.0123456)
    JsonAccessLogger.flush()
    assert [json.loads(line) for line in lines] == [
        {
            "time": "2023-11-14T22:13:20.042Z",
            "request_id": "r-1",
            "method": "HEAD",
            "route": "deliver",
            "path": "/images/a?token=…",
            "status": 304,
            "bytes": 0,
            "duration_ms": 12.346,
            "issuer": "issuer-1",
            "client": "192.0.2.7",
            "user_agent": "probe/1.0",
        }
    ]


async def test_each_line_has_its_own_time_to_the_millisecond() -> None:
    """The date and time are formatted once a second; the milliseconds each time."""
    lines: list[str] = []
    logger = _logger_into(lines)
    clock = [1_700_000_000.5, 1_700_000_000.999, 1_700_000_001.0, 1_700_086_400.25]
    with mock.patch("time.time", side_effect=clock):
        for _ in clock:
            logger.log(_routed("/status"), web.Response(), 0.0)
    JsonAccessLogger.flush()
    assert [json.loads(line)["time"] for line in lines] == [
        "2023-11-14T22:13:20.500Z",
        "2023-11-14T22:13:20.999Z",
        "2023-11-14T22:13:21.000Z",
        "2023-11-15T22:13:20.250Z",
    ]


async def test_a_client_behind_a_proxy_is_read_afresh_for_each_request() -> None:
    """A proxy's connection carries many clients' requests: the same target
    and agent from another client is logged with that client."""
    lines: list[str] = []
    logger = _logger_into(lines, trusted=PROXIES)
    for client in ("192.0.2.1", "192.0.2.2", "192.0.2.2"):
        request = _routed(
            "/status", peer="10.0.0.2", headers={"X-Forwarded-For": client}
        )
        logger.log(request, web.Response(), 0.0)
    logger.log(_routed("/status", peer="10.0.0.2"), web.Response(), 0.0)
    JsonAccessLogger.flush()
    assert [json.loads(line)["client"] for line in lines] == [
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.2",
        "10.0.0.2",
    ]


async def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    lines: list[str] = []
    logger = _logger_into(lines)
    request = _routed("/status", headers={"X-Forwarded-For": "192.0.2.1"})
    logger.log(request, web.Response(), 0.0)
    JsonAccessLogger.flush()
    assert json.loads(lines[0])["client"] == "10.1.2.3"


async def test_a_request_aiohttp_refused_after_a_routed_one_has_no_route() -> None:
    """Same method, target and agent on the same connection: the refused
    request (aiohttp's BaseRequest, never routed) is not logged with the
    route of the one before it."""
    lines: list[str] = []
    logger = _logger_into(lines)
    routed = _routed("/status", route="status")
    refused = web.BaseRequest(
        routed._message,
        routed._payload,
        routed._protocol,
        routed._payload_writer,
        routed._task,
        routed._loop,
    )
    for request in (routed, refused):
        logger.log(request, web.Response(status=400), 0.0)
    JsonAccessLogger.flush()
    assert [json.loads(line)["route"] for line in lines] == ["status", None]


async def test_lines_wait_at_most_the_flush_interval() -> None:
    """Written together once a quarter of a second has passed, one timer for
    them all; then the next lines the same way."""
    lines: list[str] = []
    logger = _logger_into(lines)
    batch = JsonAccessLogger._batch
    assert batch is not None
    loop = asyncio.get_running_loop()
    with mock.patch.object(loop, "call_later", wraps=loop.call_later) as timers:
        for round_ in range(2):
            for _ in range(3):
                logger.log(_routed("/status"), web.Response(), 0.0)
            assert len(lines) == 3 * round_
            flushes = [c for c in timers.call_args_list if c.args[1] == batch.flush]
            assert len(flushes) == round_ + 1
            await asyncio.sleep(access_log._FLUSH_SECONDS + 0.1)
            assert len(lines) == 3 * (round_ + 1)


async def test_a_full_batch_is_written_at_once() -> None:
    lines: list[str] = []
    logger = _logger_into(lines)
    for _ in range(access_log._MAX_PENDING - 1):
        logger.log(_routed("/status"), web.Response(), 0.0)
    assert lines == []
    logger.log(_routed("/status"), web.Response(), 0.0)
    assert len(lines) == access_log._MAX_PENDING


async def test_unconfigured_the_log_goes_to_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As aiohttp uses the class when `serve` did not configure it (a test server)."""
    with mock.patch.object(JsonAccessLogger, "_batch", None):
        logger = JsonAccessLogger(logging.getLogger("test"), "")
        logger.log(_routed(f"/images/a?token={JWT}"), web.Response(), 0.0)
        JsonAccessLogger.flush()
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["path"] == "/images/a?token=…"


async def test_a_connections_lines_follow_each_request() -> None:
    """The fields around the status are escaped once while a connection's
    requests repeat them: every line still names its own request's."""
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request
    from aiohttp.web_urldispatcher import UrlMappingMatchInfo

    from gateway.keys import ISSUER

    lines: list[str] = []
    logger = _logger_into(lines)
    sent = [
        ("/images/a?token=t.1", "agent-1", "issuer-1", 302),
        ("/images/a?token=t.1", "agent-1", "issuer-1", 302),
        ("/images/a?token=t.1", "agent-2", "issuer-1", 302),
        ("/images/a?token=t.1", "agent-2", None, 401),
        ("/images/b?token=t.2", "agent-2", None, 401),
        ("/status", None, None, 200),
    ]
    for number, (target, agent, issuer, status) in enumerate(sent):
        headers = {"User-Agent": agent} if agent else {}
        route = mock.Mock()
        route.name = "deliver" if target.startswith("/images") else "status"
        request = make_mocked_request(
            "GET",
            target,
            headers=headers,
            protocol=mock.Mock(peername=("10.1.2.3", 5)),
        )
        request._match_info = UrlMappingMatchInfo({}, route)  # a resolved route
        if issuer:
            request[ISSUER] = issuer
        response = web.Response(status=status, headers={"X-Request-Id": f"r{number}"})
        logger.log(request, response, 0.001)
    JsonAccessLogger.flush()
    logged = [json.loads(line) for line in lines]
    assert [
        (
            line["path"],
            line["user_agent"],
            line["issuer"],
            line["status"],
            line["request_id"],
        )
        for line in logged
    ] == [
        (target.replace("t.1", "…").replace("t.2", "…"), agent, issuer, status, f"r{n}")
        for n, (target, agent, issuer, status) in enumerate(sent)
    ]


def _logged_agents(*agents: str) -> list[str]:
    """The `user_agent` of each line logged for a request sent with these."""
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request
    from aiohttp.web_urldispatcher import UrlMappingMatchInfo

    lines: list[str] = []
    logger = _logger_into(lines)
    route = mock.Mock()
    route.name = "status"
    for agent in agents:
        request = make_mocked_request(
            "GET",
            "/status",
            headers={"User-Agent": agent},
            protocol=mock.Mock(peername=("10.1.2.3", 5)),
        )
        request._match_info = UrlMappingMatchInfo({}, route)
        logger.log(request, web.Response(headers={"X-Request-Id": "r"}), 0.001)
    JsonAccessLogger.flush()
    return [json.loads(line)["user_agent"] for line in lines]


async def test_a_key_or_token_in_the_user_agent_is_redacted() -> None:
    assert _logged_agents(KEY, f"probe/1.0 {JWT}") == ["…", "probe/1.0 …"]


async def test_a_long_user_agent_is_cut_with_no_part_of_a_key_left() -> None:
    secret = "Zq9" * 15
    agent = "a" * (_LOGGED_AGENT - 20) + f" sk_0123456789ab_{secret}" + " b" * 3000
    assert _logged_agents(agent) == [
        "a" * (_LOGGED_AGENT - 20) + f" …[{len(agent)} characters]"
    ]
