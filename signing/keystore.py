"""Issuers, their signing keys and their token policy."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

__all__ = [
    "ALLOWED_ALGORITHMS",
    "MIN_SECRET_BYTES",
    "InMemoryKeyStore",
    "Issuer",
    "IssuerKey",
    "IssuerPolicy",
    "KeyStore",
    "generate_secret",
]

# HMAC only: issuers share a secret with the gateway. `none` and every asymmetric
# algorithm are refused, so a header can never steer verification elsewhere.
ALLOWED_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512"})

# RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
MIN_SECRET_BYTES: Final = 32


def generate_secret() -> str:
    """A strong random secret for a new issuer key (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuerKey:
    kid: str
    secret: str = field(repr=False)
    algorithm: str = "HS256"

    def __post_init__(self) -> None:
        if self.algorithm not in ALLOWED_ALGORITHMS:
            raise ValueError(f"algorithm {self.algorithm!r} is not allowed")
        if len(self.secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"a secret needs at least {MIN_SECRET_BYTES} bytes")
        if not self.kid or len(self.kid) > 64:
            raise ValueError("a kid has 1 to 64 characters")


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuerPolicy:
    """What an issuer's tokens must carry; the defaults accept the seed's tokens."""

    require_exp: bool = False
    max_lifetime: int | None = None  # seconds between iat (or now) and exp


@dataclass(frozen=True, slots=True, kw_only=True)
class Issuer:
    id: str
    name: str
    keys: tuple[IssuerKey, ...]  # newest first
    policy: IssuerPolicy = IssuerPolicy()

    def key(self, kid: str) -> IssuerKey | None:
        return next((k for k in self.keys if k.kid == kid), None)


class KeyStore(Protocol):
    def issuer(self, issuer_id: str, /) -> Issuer | None: ...

    def issuer_for_kid(self, kid: str, /) -> Issuer | None:
        """The one issuer with an active key named `kid`; None if none or several.

        Lets a token with `kid` be verified without first reading its unverified
        payload for `iss` (which is then still checked, as a claim).
        """
        ...


class InMemoryKeyStore:
    """A fixed set of issuers, for backends that mint and for tests."""

    def __init__(self, issuers: Mapping[str, Issuer]) -> None:
        self._issuers = dict(issuers)

    def issuer(self, issuer_id: str, /) -> Issuer | None:
        return self._issuers.get(issuer_id)

    def issuer_for_kid(self, kid: str, /) -> Issuer | None:
        owners = [i for i in self._issuers.values() if i.key(kid) is not None]
        return owners[0] if len(owners) == 1 else None
