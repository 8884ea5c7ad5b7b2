"""Access tokens: who an end user is, for the catalog API and the sized paths.

RFC 9068 JWTs signed with an issuer's signing keys (the same keys and `kid`s
as transformation tokens), told apart by their header's `typ: at+jwt`:
`sub` names a user here and an image there, so neither kind is ever taken
for the other. Claims: `iss`, `sub`, `exp` (required, and at most the
gateway's lifetime cap away), `scope` (space-separated) and `roles`.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final

from signing.errors import InvalidClaimError, LifetimeExceededError
from signing.jws import MINTING_JWT
from signing.keystore import IssuerKey, KeyStore
from signing.tokens import (
    DEFAULT_LEEWAY,
    MAX_TOKEN_BYTES,
    KeyedVerifier,
    verified_claims,
)

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "DEFAULT_ACCESS_LIFETIME",
    "READ",
    "SCOPES",
    "WRITE",
    "AccessToken",
    "AccessTokenVerifier",
    "mint_access_token",
    "parse_roles",
]

ACCESS_TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 - a media type, not a secret
READ: Final = "images:read"
WRITE: Final = "images:write"
SCOPES: Final = frozenset({READ, WRITE})
DEFAULT_ACCESS_LIFETIME: Final = 86_400
MAX_SUBJECT_LENGTH: Final = 256
MAX_ROLES: Final = 64
# A role is a short name, safe in a header, a log line and a SQL JSON array.
_ROLE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessToken:
    """A verified access token: the issuer (tenant), the user, what they may do."""

    issuer: str
    kid: str
    subject: str
    scopes: frozenset[str]
    roles: frozenset[str]
    expires_at: float


def parse_roles(values: Iterable[object]) -> frozenset[str]:
    """Roles as given (a claim, a CLI list, a PATCH): each a short name, a bounded set."""
    roles = list(values)
    if len(roles) > MAX_ROLES:
        raise ValueError(f"at most {MAX_ROLES} roles")
    for role in roles:
        if not isinstance(role, str) or _ROLE.fullmatch(role) is None:
            raise ValueError(
                "a role is 1 to 64 letters, digits and _ . : - (starting with a letter or digit)"
            )
    return frozenset(roles)  # type: ignore[arg-type]  # checked above


def mint_access_token(
    key: IssuerKey,
    *,
    issuer_id: str,
    subject: str,
    ttl: float,
    scopes: Collection[str] = (READ,),
    roles: Collection[str] = (),
    audience: str | None = None,
    now: float | None = None,
) -> str:
    """An access token for one user of an issuer's, good for `ttl` seconds."""
    if key.verify_only:
        raise ValueError(
            f"key {key.kid!r} may only verify tokens; mint with a newer key"
        )
    if ttl <= 0:
        raise ValueError("an access token needs a positive lifetime")
    if not subject or len(subject) > MAX_SUBJECT_LENGTH:
        raise ValueError(f"the subject is 1 to {MAX_SUBJECT_LENGTH} characters")
    if unknown := set(scopes) - SCOPES:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "iss": issuer_id,
        "sub": subject,
        "iat": issued,
        "exp": issued + int(ttl),
        "jti": secrets.token_urlsafe(12),
        "scope": " ".join(sorted(scopes)),
    }
    if roles:
        claims["roles"] = sorted(parse_roles(roles))
    if audience is not None:
        claims["aud"] = audience
    return MINTING_JWT.encode(
        claims,
        key.secret,
        algorithm=key.algorithm,
        headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE},
    )


class AccessTokenVerifier(KeyedVerifier):
    """Verifies access tokens against `keys`; one per gateway, like `TokenVerifier`."""

    def __init__(
        self,
        keys: KeyStore,
        *,
        leeway: float = DEFAULT_LEEWAY,
        audience: str | None = None,
        max_bytes: int = MAX_TOKEN_BYTES,
        max_lifetime: int = DEFAULT_ACCESS_LIFETIME,
        memo_size: int = 256,
    ) -> None:
        super().__init__(
            keys,
            leeway=leeway,
            audience=audience,
            max_bytes=max_bytes,
            memo_size=memo_size,
        )
        self.max_lifetime = max_lifetime

    def verify(self, token: str | None, *, now: float | None = None) -> AccessToken:
        """Check an access token completely or raise a `SigningError` leaf."""
        claims, issuer, key = verified_claims(
            token,
            self.keys,
            self._jwt,
            leeway=self.leeway,
            audience=self.audience,
            max_bytes=self.max_bytes,
            access=True,
        )
        now = time.time() if now is None else now
        expires_at = claims["exp"]
        assert isinstance(expires_at, int | float)  # noqa: S101 - pyjwt checked it
        # Both from now and from `iat`: a back-dated `iat` buys no longer life.
        issued = claims.get("iat")
        start = issued if isinstance(issued, int | float) else now
        lifetime = expires_at - min(start, now)
        if lifetime > self.max_lifetime + self.leeway:
            raise LifetimeExceededError(
                f"the access token lives {int(lifetime)} s; at most {self.max_lifetime} s are accepted"
            )
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
            raise InvalidClaimError(
                f"the 'sub' claim must be a string of 1 to {MAX_SUBJECT_LENGTH} characters"
            )
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidClaimError(
                "the 'scope' claim must be a space-separated string"
            )
        roles = claims.get("roles", [])
        try:
            if not isinstance(roles, list):
                raise ValueError("not an array")
            granted = parse_roles(roles)
        except ValueError as exc:
            raise InvalidClaimError(
                f"the 'roles' claim must be an array of role names: {exc}"
            ) from None
        return AccessToken(
            issuer=issuer.id,
            kid=key.kid,
            subject=subject,
            # Scopes we do not know grant nothing here (RFC 6749 §3.3).
            scopes=frozenset(scope.split()) & SCOPES,
            roles=granted,
            expires_at=float(expires_at),
        )
