"""Who is calling: a `Principal` from the request's credentials.

Today the only credential is an issuer's API key (`Authorization: Bearer
sk_…`); every call made with it is scoped to that issuer (tenant).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from gateway.errors import ApiKeyInvalidError, ApiKeyMissingError
from gateway.keys import CATALOG, ISSUER, SETTINGS

__all__ = ["Principal", "authenticate", "still_authorised"]

# Longer than any key we issue: refused before it reaches the catalog.
_MAX_KEY_LENGTH: Final = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    issuer_id: str
    guest: bool = False
    # The API key it came with, to check again before a slow write commits.
    credential: str | None = field(default=None, repr=False)

    @property
    def caller(self) -> str:
        """Who counts against per-caller bounds: the key, or all guests as one."""
        return self.credential or "guest"


async def authenticate(
    request: web.Request, *, guest_allowed: bool = False
) -> Principal:
    """The caller, or `UnauthorizedError`; guests only where the route allows them."""
    header = request.headers.get("Authorization")
    if header is None:
        ingest = request.app[SETTINGS].ingest
        if guest_allowed and ingest.guest_uploads and ingest.guest_issuer:
            return Principal(issuer_id=ingest.guest_issuer, guest=True)
        raise ApiKeyMissingError("send an API key: Authorization: Bearer sk_…")
    scheme, _, key = header.partition(" ")
    issuer_id = None
    # Keys we issue are ASCII; anything else (aiohttp hands undecodable
    # header bytes over as surrogates) is no key, and must not reach SQL.
    if scheme.lower() == "bearer" and len(key) < _MAX_KEY_LENGTH and key.isascii():
        issuer_id = await request.app[CATALOG].store.api_key_issuer(key.strip())
    if issuer_id is None:
        raise ApiKeyInvalidError("the API key is unknown or revoked")
    request[ISSUER] = issuer_id
    return Principal(issuer_id=issuer_id, credential=key.strip())


async def still_authorised(request: web.Request, principal: Principal) -> None:
    """Check the key again: a key revoked while a slow upload arrived writes nothing."""
    if principal.credential is None:
        return
    store = request.app[CATALOG].store
    if await store.api_key_issuer(principal.credential) != principal.issuer_id:
        raise ApiKeyInvalidError("the API key was revoked during the request")
