"""Who is calling: one `Principal` from four credentials.

- `Authorization: Bearer sk_…`, an issuer's API key: full scope, the key's roles;
- `Authorization: Bearer <access token>`, an end user's (`signing.access`);
- `X-Session-Token: <access token>`, the same token as a session header;
- the cookie `GATEWAY_SESSION_COOKIE` holding an access token, for reads only:
  a browser sends cookies with any cross-site form post, so a write that only
  a cookie vouches for is refused (no CSRF).

The first credential present is the one judged, in that order; a bad one is a
401 even when a later one would pass, so a client learns that it sent a bad
credential. Every principal belongs to one issuer (tenant): another issuer's
images answer exactly like missing ones.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from aiohttp import hdrs, web
from multidict import CIMultiDictProxy

from gateway.errors import (
    AccessTokenInvalidError,
    AmbiguousParameterError,
    ApiKeyInvalidError,
    ApiKeyMissingError,
    CookieWriteError,
    InsufficientScopeError,
)
from gateway.http.credentials import Credential, Principal
from gateway.keys import AUTHENTICATOR, CATALOG, ISSUER, SETTINGS
from signing import READ

__all__ = [
    "Credential",
    "Principal",
    "authenticate",
    "cookie",
    "optional_principal",
    "still_authorised",
]

# Longer than any key we issue: refused before it reaches the catalog.
_MAX_KEY_LENGTH: Final = 200
SESSION_HEADER: Final = "X-Session-Token"
# An authentication scheme's name (RFC 9110 §11.1: a token), as short as real ones.
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,19}")
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


async def authenticate(
    request: web.Request, *, scope: str = READ, guest_allowed: bool = False
) -> Principal:
    """The caller with `scope`, or a 401/403; guests only where the route allows them."""
    principal = await _identify(request, write=scope != READ)
    if principal is None:
        ingest = request.app[SETTINGS].ingest
        if guest_allowed and ingest.guest_uploads and ingest.guest_issuer:
            return Principal(issuer_id=ingest.guest_issuer, credential=Credential.GUEST)
        raise ApiKeyMissingError(
            "send a credential: Authorization: Bearer <API key or access token>"
        )
    return _scoped(request, principal, scope)


async def optional_principal(request: web.Request) -> Principal | None:
    """The caller with `images:read` if a credential was sent; None if none was.

    For routes anyone may use (public images) that give a caller more: a bad
    credential is still a 401, never silently anonymous.
    """
    principal = await _identify(request, write=False)
    return None if principal is None else _scoped(request, principal, READ)


def _scoped(request: web.Request, principal: Principal, scope: str) -> Principal:
    if scope not in principal.scopes:
        raise InsufficientScopeError(
            f"the access token lacks the scope {scope!r}", scope=scope
        )
    request[ISSUER] = principal.issuer_id
    return principal


async def _identify(request: web.Request, *, write: bool) -> Principal | None:
    authenticator = request.app[AUTHENTICATOR]
    catalog = authenticator.catalog
    if catalog.due():  # a key revoked by another worker is seen now
        await catalog.refresh()
    headers = request.headers
    if (header := _only(headers, hdrs.AUTHORIZATION)) is not None:
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            # No bearer credential at all (RFC 6750 §3.1: a plain challenge).
            # The scheme is named when it plainly is one; a value without one
            # may be a key or token sent bare, and is never echoed.
            named = credential and _SCHEME.fullmatch(scheme)
            raise ApiKeyMissingError(
                f"Authorization holds no bearer credential "
                f"({f'scheme {scheme}' if named else 'no scheme'}); "
                "send Authorization: Bearer <API key or access token>"
            )
        if credential.startswith("sk_"):
            return await _api_key(request, credential)
        return authenticator.access_token(credential, hdrs.AUTHORIZATION)
    if (session := _only(headers, SESSION_HEADER)) is not None:
        return authenticator.access_token(session.strip(), SESSION_HEADER)
    if (cookies := headers.get(hdrs.COOKIE)) is not None and (
        session := cookie(cookies, request.app[SETTINGS].access.session_cookie)
    ) is not None:
        if write or request.method not in _SAFE_METHODS:
            raise CookieWriteError(
                "a session cookie authenticates reads only: send the token in "
                "Authorization or X-Session-Token to write",
                header=hdrs.COOKIE,
            )
        return authenticator.access_token(session, hdrs.COOKIE)
    return None


def _only(headers: CIMultiDictProxy[str], name: str) -> str | None:
    """The one value of a credential header: two could be judged by one layer
    (a proxy, a cache) and used by another, as two tokens in a query."""
    values = headers.getall(name, ())
    if len(values) > 1:
        raise AmbiguousParameterError(f"send one {name} header", header=name)
    return values[0] if values else None


def cookie(header: str, name: str) -> str | None:
    """The value of the first cookie `name` in a Cookie header, its quotes
    removed; the other pairs are never parsed.

    A Cookie header is `name=value` pairs joined by `;` (RFC 6265 §4.2.1; some
    proxies join with `,`), and no cookie value holds either. aiohttp's parser
    (`request.cookies`) rescans the rest of the header for each pair it cannot
    read, which made 8 KB of `a;a;…` cost 16 ms; here it is one scan. Read as
    aiohttp reads it, except: of two same-named cookies the first is taken (a
    browser sends the one set for the longer path first; aiohttp keeps the
    last), a quoted value is not searched for a `;` inside it, a `,` ends a
    value as a `;` does (aiohttp keeps it in the value), and a name more than
    8 spaces after its separator is none.
    """
    for found in _pair_named(name).finditer(header):
        # After the separator, a space or two; past `_PAIR_INDENT` no pair.
        before, least = found.start(), found.start() - _PAIR_INDENT
        while before > max(least, 0) and header[before - 1] in " \t":
            before -= 1
        if before and header[before - 1] not in ";,":
            continue  # the name ends another's name or value (`xs=`, `a=s=`)
        end = _PAIR_END.search(header, found.end())
        value = header[found.end() : end.start() if end else len(header)]
        value = value.strip(" \t")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return value
    return None


def _pair_start(name: str) -> re.Pattern[str]:
    """`name` and its `=`: the regex engine skips to each occurrence of the
    name as to a literal's (a pattern that began with the separator would try
    every character: 30 ns each, on every request that sends cookies)."""
    return re.compile(rf"{re.escape(name)}[ \t]*=")


# Wrapped by a call, not a decorator: mutation testing skips decorated functions.
_pair_named: Final = functools.lru_cache(maxsize=4)(_pair_start)
_PAIR_END: Final = re.compile("[;,]")
_PAIR_INDENT: Final = 8


async def _api_key(request: web.Request, key: str) -> Principal:
    found = None
    # Keys we issue are ASCII; anything else (aiohttp hands undecodable
    # header bytes over as surrogates) is no key, and must not reach SQL.
    if len(key) < _MAX_KEY_LENGTH and key.isascii():
        found = await request.app[AUTHENTICATOR].api_key(key)
    if found is None:
        raise ApiKeyInvalidError("the API key is unknown or revoked")
    return Principal(
        issuer_id=found.issuer_id,
        credential=Credential.API_KEY,
        roles=found.roles,
        secret=key,
    )


async def still_authorised(request: web.Request, principal: Principal) -> None:
    """Check the credential again: one revoked while a slow upload arrived writes nothing."""
    if principal.secret is None:
        return
    catalog = request.app[CATALOG]
    if principal.credential is Credential.API_KEY:
        found = await catalog.store.api_key(principal.secret)
        if found is None or found.issuer_id != principal.issuer_id:
            raise ApiKeyInvalidError("the API key was revoked during the request")
        return
    await catalog.fresh()
    issuer = catalog.issuer(principal.issuer_id)
    if issuer is None or issuer.key(principal.secret) is None:
        raise AccessTokenInvalidError(
            "the access token's key was revoked during the request",
            header=hdrs.AUTHORIZATION,
        )
