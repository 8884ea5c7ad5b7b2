"""Credentials into principals: API keys (cached per catalog generation) and access tokens.

Kept apart from `auth` (the request side) so the app's keys can name the
`Authenticator` type without importing the handlers.
"""

from __future__ import annotations

import hashlib
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
    """Turns credentials into principals; one per app, bound on start-up.

    API keys found are remembered (by their hash, bounded) until the catalog
    changes, as the resolver's answers are: a revocation anywhere is seen by
    the next request, since every request first asks the catalog whether it
    changed.
    """

    def __init__(
        self, settings: Settings, catalog: CachedCatalog, *, cache_size: int = 1024
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self._api_keys: LRUCache[bytes, ApiKey | None] = LRUCache(maxsize=cache_size)
        tokens = settings.tokens
        self.verifier = AccessTokenVerifier(
            catalog,
            leeway=tokens.leeway,
            audience=tokens.audience,
            max_bytes=tokens.max_bytes,
            max_lifetime=settings.access.max_lifetime,
        )
        catalog.subscribe(self._forget)

    def _forget(self) -> None:
        self._api_keys.clear()
        # Revoked keys must not stay in memory.
        self.verifier.retain(())

    async def api_key(self, key: str) -> ApiKey | None:
        digest = hashlib.sha256(key.encode()).digest()
        if digest in self._api_keys:
            return self._api_keys[digest]
        generation = self.catalog.generation
        found = await self.catalog.store.api_key(key)
        if generation == self.catalog.generation:
            self._api_keys[digest] = found
        return found

    def access_token(self, token: str, header: str) -> Principal:
        try:
            access = self.verifier.verify(token)
        except SigningError as exc:
            raise AccessTokenInvalidError(exc.detail, header=header) from None
        return Principal(
            issuer_id=access.issuer,
            credential=Credential.ACCESS_TOKEN,
            subject=access.subject,
            roles=access.roles,
            scopes=access.scopes,
            secret=access.kid,
        )
