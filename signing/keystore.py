"""Issuers, their signing keys and their token policy."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol, Self

__all__ = [
    "ALLOWED_ALGORITHMS",
    "LEGACY_MIN_SECRET_BYTES",
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

# RFC 7518 §3.2: an HMAC key must be at least as long as the hash output. pyjwt
# warns on every token signed or verified with a shorter one.
MIN_SECRET_BYTES: Final[Mapping[str, int]] = MappingProxyType(
    {"HS256": 32, "HS384": 48, "HS512": 64}
)


def generate_secret(algorithm: str = "HS256") -> str:
    """A random URL-safe secret with as many random bytes as the algorithm's hash."""
    if algorithm not in ALLOWED_ALGORITHMS:
        raise ValueError(f"algorithm {algorithm!r} is not allowed")
    return secrets.token_urlsafe(MIN_SECRET_BYTES[algorithm])


# The previous release's floor for every algorithm, which its catalogs' HS384 and
# HS512 keys may sit on: such a key may still verify, never sign.
LEGACY_MIN_SECRET_BYTES: Final = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuerKey:
    """A signing key; `verify_only` keys check old tokens and mint none."""

    kid: str
    secret: str = field(repr=False)
    algorithm: str = "HS256"
    verify_only: bool = False

    def __post_init__(self) -> None:
        if self.algorithm not in ALLOWED_ALGORITHMS:
            raise ValueError(f"algorithm {self.algorithm!r} is not allowed")
        size = len(self.secret.encode())
        if self.verify_only and size < LEGACY_MIN_SECRET_BYTES:
            raise ValueError(
                f"a verify-only secret needs at least {LEGACY_MIN_SECRET_BYTES} bytes"
            )
        minimum = MIN_SECRET_BYTES[self.algorithm]
        if size < minimum and not self.verify_only:
            raise ValueError(
                f"an {self.algorithm} secret needs at least {minimum} bytes"
            )
        if not self.kid or len(self.kid) > 64:
            raise ValueError("a kid has 1 to 64 characters")

    @classmethod
    def stored(cls, *, kid: str, secret: str, algorithm: str) -> Self:
        """A key as a catalog of this or the previous release holds it.

        The previous release gave every algorithm a 32-byte floor; its HS384
        and HS512 keys load verify-only, so that their tokens keep working
        until the issuer rotates to a key of full length.
        """
        short = len(secret.encode()) < MIN_SECRET_BYTES.get(algorithm, 0)
        return cls(kid=kid, secret=secret, algorithm=algorithm, verify_only=short)


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

    @property
    def signing_key(self) -> IssuerKey | None:
        """The newest key new tokens may be signed with (not a verify-only one)."""
        return next((k for k in self.keys if not k.verify_only), None)


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
