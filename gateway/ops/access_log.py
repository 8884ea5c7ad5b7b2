"""The access log: one JSON line per request, secrets redacted, written in batches.

aiohttp's own access logger formats each line through `logging` and costs
tens of microseconds a request; this one writes the JSON line out with JSON's
own C escaping, escapes the fields a connection's requests repeat once, and
hands the lines to stdout together at most every `_FLUSH_SECONDS`, the
timestamp formatted once per second.

The path is the request target as received (percent-encoded, with its
query). A request's token (`?token=`, in its path) or API key
(`Authorization`) is a credential, and a seed-style token never expires:
neither ever reaches the log. Query parameters named in `_SECRET_PARAMETERS`
are written as `…`, and so is the `s--…--` signature of a local CDN URL (such
a URL never expires).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import re
import string
import sys
import time
import urllib.parse
from collections.abc import Callable, Collection, Mapping
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from multidict import MultiMapping

from gateway.keys import ISSUER
from gateway.ops.logs import Sink

__all__ = [
    "JsonAccessLogger",
    "client_address",
    "holds_credential",
    "redacted_path",
    "redacted_query",
    "redacted_target",
]

_FLUSH_SECONDS: Final = 0.25
# JSON's own string escaping (C): quotes, backslashes, control characters and
# everything beyond ASCII, lone surrogates included, written as escapes.
_ESCAPE: Final[Callable[[str], str]] = json.encoder.encode_basestring_ascii
_MAX_PENDING: Final = 512
# Compared case-folded: `TOKEN=` is as secret as `token=`.
_SECRET_PARAMETERS: Final = frozenset(
    {
        "token",
        "key",
        "api_key",
        "apikey",
        "access_token",
        "signature",
        "sig",
        "__cld_token__",
    }
)
# Between slashes, not consuming them: two in a row are both found.
_URL_SIGNATURE: Final = re.compile(r"(?<=/)s--[A-Za-z0-9_-]*--(?=/)")
# Credentials by their shape, wherever they stand. A JWT: dot-separated
# base64url whose header is a JSON object (`{"` is `eyJ`; `{ `, or a newline,
# tab or CR after the brace, pretty-printed: `eyA`, `ewo`, `ewk`, `ew0`), not
# inside a longer base64url run (`monkeyJuice.txt` is no token). An API key:
# `sk_`, its 12-hex prefix, its secret.
_CREDENTIAL: Final = re.compile(
    r"(?<![A-Za-z0-9_-])(?:eyJ|eyA|ewo|ewk|ew0)[A-Za-z0-9_-]*"
    r"\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,3}"
    r"|sk_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}"
)
# Targets up to this long are remembered (a page of tiles repeats its own);
# longer ones, redacted each time, cannot fill the memory: 4096 of 50 KB would.
_REMEMBERED_TARGET: Final = 2048
# What is logged of a target: more than any route takes (a token of the most
# characters accepted by default, 4096, on the longest path). The rest is
# neither logged nor read, because redaction costs time in proportion to what
# it reads: a 48 KB target of `%61=b&` pairs (the request line may be 50 KB)
# took 26 ms of the event loop, ninety times the cost of answering it.
_LOGGED_TARGET: Final = 4608
_LOGGED_AGENT: Final = 1024
# How many times a target is percent-decoded in search of a credential: each
# decoding may reveal the next level's escapes (`%2565` is `%65` is `e`).
_DECODINGS: Final = 3
# Parameters redacted one by one (each may be decoded); the rest are `…`.
_LOGGED_PARAMETERS: Final = 64
# What a credential or a percent escape is made of: a cut moves back past
# these, so that no part of a credential is left at its end.
_CREDENTIAL_RUN: Final = string.ascii_letters + string.digits + "-_.~%+"
# X-Forwarded-For hops looked at, from the right: no real chain is longer.
_FORWARDED_HOPS: Final = 32
_TrustedNetworks = Collection[ipaddress.IPv4Network | ipaddress.IPv6Network]
# What a line's head and tail are built from: request class, method, raw
# target, issuer, user agent, and a trusted proxy's X-Forwarded-For.
_Seen = tuple[type, str, str, str | None, str | None, str | None]


def redacted_target(target: str) -> str:
    """The request target as received (path and query, percent-encoded), with
    every secret parameter's value and any `s--…--` URL signature redacted.

    The raw target, as a web server's access log has it: it shows exactly
    what was asked, and costs no decoding. Remembered when short: a page of
    tiles repeats its target (its token) on every request.
    """
    if len(target) <= _REMEMBERED_TARGET:
        return _remembered_target(target)
    return _bounded(target, _LOGGED_TARGET, _redacted_target)


def _bounded(text: str, limit: int, redact: Callable[[str], str]) -> str:
    """`redact(text)`, or for a text over `limit` characters, its head redacted
    and how long it was: `…[48012 characters]`.

    The head ends before any run of credential characters the cut went
    through: a key cut short of its full shape would not be recognised, and
    part of its secret logged.
    """
    if len(text) <= limit:
        return redact(text)
    head = text[:limit].rstrip(_CREDENTIAL_RUN)
    return f"{redact(head)}…[{len(text)} characters]"


def _redacted_target(target: str) -> str:
    path, question, query = target.partition("?")
    if "s--" in path:
        path = redacted_path(path)
    if (
        "%" in path
        and "s--" in (decoded := urllib.parse.unquote(path))
        and (redacted := redacted_path(decoded)) != decoded
    ):
        # An encoded signature, or one escaped in part (`s--AbC%2D-`), routes
        # like a plain one (aiohttp decodes the path): its decoded form is
        # logged, redacted.
        path = redacted
    return _without_credentials(f"{path}?{redacted_query(query)}" if question else path)


# Wrapped by a call, not a decorator: mutation testing skips decorated functions.
_remembered_target: Final = functools.lru_cache(maxsize=4096)(_redacted_target)


def _without_credentials(target: str) -> str:
    """Any token or API key the names missed, written as `…`.

    A token is still a credential where no handler reads it as one:
    `?x=1;token=…` (no `&`), `token[]=…`, or the query of a URL given as
    a value. Looked for decoded too, where the target has escapes, up to
    `_DECODINGS` times: a token encoded twice (`%2565yJ…`) is one decoding
    from use. The first decoding that shows one is logged, redacted.
    """
    decoded = target
    for _ in range(_DECODINGS):
        if "%" not in decoded:
            break
        decoded = urllib.parse.unquote(decoded)
        if _has_credential(decoded):
            target = decoded
            break
    if _has_credential(target):
        target = _CREDENTIAL.sub("…", target)
    return target


def _has_credential(text: str) -> bool:
    return ("." in text and ("ey" in text or "ew" in text)) or "sk_" in text


def holds_credential(text: str) -> bool:
    """Whether `text` holds something shaped like a token or an API key."""
    return _has_credential(text) and _CREDENTIAL.search(text) is not None


def redacted_query(query: str) -> str:
    """A raw query string with every secret parameter's value replaced by `…`.

    Names are compared decoded and case-folded, as the handlers read them
    (`tok%65n=` is `token=`); a name that only decodes to a secret one is
    written decoded, so that nothing after an encoded `=` survives. Split on
    `&` rather than searched with a regular expression: a fresh token's query
    is new every time, and a regex tries each of its hundreds of characters
    as the start of a name. Past `_LOGGED_PARAMETERS` parameters, the rest of
    the query is written `…`, unread.
    """
    parameters = query.split("&", _LOGGED_PARAMETERS)
    if len(parameters) > _LOGGED_PARAMETERS:
        parameters[-1] = "…"  # the rest, unread
    for index, parameter in enumerate(parameters):
        name, equals, _ = parameter.partition("=")
        if "%" in parameter or "+" in parameter:
            decoded, equals, _ = urllib.parse.unquote_plus(parameter).partition("=")
            if decoded.casefold() in _SECRET_PARAMETERS:
                parameters[index] = f"{decoded}=…"
        elif equals and name.casefold() in _SECRET_PARAMETERS:
            parameters[index] = f"{name}=…"
    return "&".join(parameters)


def redacted_path(path: str) -> str:
    """The path with every delivery URL `s--…--` signature written as `s--…--`."""
    return _URL_SIGNATURE.sub("s--…--", path)


def client_address(
    request: web.BaseRequest, trusted: _TrustedNetworks, forwarded: str | None = None
) -> str | None:
    """The peer, or, when the peer is a trusted proxy, the nearest untrusted
    address in `X-Forwarded-For` (the rightmost: the ones before it are the
    client's own to write). Only the last `_FORWARDED_HOPS` are read: a client
    may send thousands of trusted-looking ones. A hop that is no IP address
    (with a port or not) breaks the chain: the nearest address vouched for is
    logged, never the hop's text (it could be anything, a token included).

    `forwarded`: the request's `X-Forwarded-For` headers already joined
    (`_forwarded`), where the caller has them."""
    peer = request.remote
    if not trusted or peer is None or not _in(peer, trusted):
        return peer
    if forwarded is None:
        forwarded = _forwarded(request)
    hops = forwarded.rsplit(",", _FORWARDED_HOPS)[-_FORWARDED_HOPS:]
    nearest = peer
    for hop in reversed([h.strip() for h in hops if h.strip()]):
        address = _ip(hop)
        if address is None:
            return nearest
        if not _in(address, trusted):
            return address
        nearest = address
    return peer


def _forwarded(request: web.BaseRequest) -> str:
    """Every `X-Forwarded-For` header's hops, in order, as one list (RFC 9110
    §5.3): a proxy may add a header of its own after the ones the client sent
    (HAProxy's `option forwardfor`) rather than extend the last one, and the
    first header alone is the client's to write. The last `_FORWARDED_HOPS`
    headers hold at least the last `_FORWARDED_HOPS` hops."""
    # Typed a multidict; not always one (below).
    headers: Mapping[str, str] = request.headers
    if not isinstance(headers, MultiMapping):
        # aiohttp's stand-in for a request it could not parse has a plain,
        # empty dict for headers, nothing forwarded: `getall` raised, a
        # traceback for each such request from a trusted proxy, and no line.
        return ""
    hops = headers.getall("X-Forwarded-For", ())
    return ",".join(hops[-_FORWARDED_HOPS:])


def _ip(hop: str) -> str | None:
    """The IP address of a hop (`1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`), or None."""
    host = hop
    if hop.startswith("["):
        host = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        host = hop.partition(":")[0]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _in(address: str, trusted: _TrustedNetworks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


class _Batch:
    """Lines waiting to be written, shared by every connection's logger."""

    def __init__(self, stream: Sink) -> None:
        self.stream = stream
        self.lines: list[str] = []
        self._scheduled = False
        self._second = -1
        self._stamp = ""

    def stamp(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= _MAX_PENDING:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(_FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self.lines:
            lines, self.lines = self.lines, []
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


class JsonAccessLogger(AbstractAccessLogger):
    """aiohttp's access-log hook, one instance per connection, one batch per process.

    `trusted_proxies` and `stream` are class attributes: aiohttp builds the
    instances itself; `serve` sets them once (`configure`).
    """

    trusted_proxies: _TrustedNetworks = ()
    _batch: _Batch | None = None

    @classmethod
    def configure(cls, *, trusted_proxies: _TrustedNetworks, stream: Sink) -> None:
        cls.trusted_proxies = trusted_proxies
        cls._batch = _Batch(stream)

    @classmethod
    def flush(cls) -> None:
        if cls._batch is not None:
            cls._batch.flush()

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        # What the previous request on this connection logged around its
        # status: a page's tiles reloaded repeat it, and it is escaped once.
        self._seen: _Seen | None = None
        self._head = self._tail = ""

    def log(
        self, request: web.BaseRequest, response: web.StreamResponse, time: float
    ) -> None:
        batch = JsonAccessLogger._batch
        if batch is None:
            batch = JsonAccessLogger._batch = _Batch(sys.stdout)
        headers = request.headers
        trusted = self.trusted_proxies
        # Everything the line's head and tail depend on. The peer is this
        # connection's (one logger per connection); a trusted proxy's
        # `X-Forwarded-For` is the request's.
        seen: _Seen = (
            type(request),
            request.method,
            request.raw_path,
            request.get(ISSUER),
            headers.get("User-Agent"),
            _forwarded(request) if trusted else None,
        )
        if seen != self._seen:
            self._seen = seen
            self._head, self._tail = self._described(request, seen)
        # Written out rather than through `json.dumps` of a dict, at a third of
        # the cost; every string a client controls goes through JSON's
        # escaping (in `_described`).
        batch.add(
            f'{{"time":"{batch.stamp()}",'
            f'"request_id":{_json(response.headers.get("X-Request-Id"))},'
            f'{self._head},"status":{response.status},'
            f'"bytes":{response.body_length},"duration_ms":{time * 1000:.3f},'
            f"{self._tail}}}"
        )

    def _described(self, request: web.BaseRequest, seen: _Seen) -> tuple[str, str]:
        """The line's fields before the status (method, route, path) and after
        the duration (issuer, client, user agent), escaped, from `seen`."""
        _, method, target, issuer, agent, forwarded = seen
        route = _route_name(request)
        trusted = self.trusted_proxies
        client = (
            client_address(request, trusted, forwarded) if trusted else request.remote
        )
        head = (
            f'"method":{_json(method)},"route":{_json(route)},'
            f'"path":{_json(redacted_target(target))}'
        )
        tail = (
            f'"issuer":{_json(issuer)},"client":{_json(client)},'
            f'"user_agent":{_json(agent and _bounded(agent, _LOGGED_AGENT, _without_credentials))}'
        )
        return head, tail


def _route_name(request: web.BaseRequest) -> str | None:
    """The route's name; None for a request aiohttp refused before routing it
    (a malformed head), whose `match_info` property asserts there is one."""
    if not isinstance(request, web.Request):
        return None
    try:
        return request.match_info.route.name
    except (AssertionError, AttributeError):  # AttributeError: run with -O
        return None


def _json(value: str | None) -> str:
    return "null" if value is None else _ESCAPE(value)
