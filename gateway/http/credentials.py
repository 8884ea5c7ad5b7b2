"""Credentials into principals: API keys (looked up each time) and access tokens.

Kept apart from `auth` (the request side) so the app's keys can name the
`Authenticator` type without importing the handlers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from enum import StrEnum

from cachetools import LRUCache

from gateway.catalog import ApiKey, CachedCatalog
from gateway.config import Settings
from gateway.errors import AccessTokenInvalidError
from signing import SCOPES, AccessTokenVerifier, SigningError

__all__ = ["Authenticator", "Credential", "Principal"]


class Credential(StrEnum):
    API_KEY = "api_key"
    ACCESS_TOKEN = "access_token"  # noqa: S105 - a name, not a secret
    GUEST = "guest"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    issuer_id: str
    credential: Credential
    subject: str | None = None  # the user, for an access token
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = SCOPES
    # The API key or the access token's `kid`: checked again before a slow write commits.
    secret: str | None = field(default=None, repr=False)
    expires_at: float = math.inf

    @property
    def guest(self) -> bool:
        return self.credential is Credential.GUEST

    @property
    def caller(self) -> str:
        """Who counts against per-caller bounds: the key, the user, or all guests as one."""
        match self.credential:
            case Credential.API_KEY:
                return self.secret or "api_key"
            case Credential.ACCESS_TOKEN:
                return f"user:{self.issuer_id}:{self.subject}"
            case Credential.GUEST:
                return "guest"


class Authenticator:
    """Turns credentials into principals; one per app, made on start-up.

    Access tokens are verified against the issuers' keys in memory, which any
    catalog change reloads. A page of thumbnails sends the same token dozens
    of times: each verified one is remembered (bounded) until its `exp`, and
    everything is forgotten on any catalog change, so a revoked signing key
    ends its tokens as soon as this process hears of it.
    """

    def __init__(self, settings: Settings, catalog: CachedCatalog) -> None:
        self.settings = settings
        self.catalog = catalog
        tokens = settings.tokens
        self.verifier = AccessTokenVerifier(
            catalog,
            leeway=tokens.leeway,
            audience=tokens.audience,
            max_bytes=tokens.max_bytes,
            max_lifetime=settings.access.max_lifetime,
        )
        self._leeway = tokens.leeway
        self._verified: LRUCache[str, Principal] = LRUCache(maxsize=tokens.cache_size)
        catalog.subscribe(self._forget)

    def _forget(self) -> None:
        self._verified.clear()
        # Revoked keys must not stay in memory.
        self.verifier.retain(())

    async def api_key(self, key: str) -> ApiKey | None:
        """Asked of the store every time: a revocation on any replica counts
        at once, not when a notification arrives (API keys are backends'
        credentials; end users' access tokens are verified in memory)."""
        return await self.catalog.store.api_key(key)

    def access_token(self, token: str, header: str) -> Principal:
        known = self._verified.get(token)
        if known is not None and time.time() <= known.expires_at + self._leeway:
            return known
        try:
            access = self.verifier.verify(token)
        except SigningError as exc:
            raise AccessTokenInvalidError(exc.detail, header=header) from None
        principal = Principal(
            issuer_id=access.issuer,
            credential=Credential.ACCESS_TOKEN,
            subject=access.subject,
            roles=access.roles,
            scopes=access.scopes,
            secret=access.kid,
            expires_at=access.expires_at,
        )
        self._verified[token] = principal
        return principal
