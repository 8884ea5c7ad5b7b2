"""Mint and verify transformation tokens (our claims layer over pyjwt's JWS)."""

from __future__ import annotations

import functools
import json
import secrets
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.types import HashlibHash

from signing.errors import (
    AlgorithmNotAllowedError,
    ExpiredTokenError,
    ImmatureTokenError,
    InvalidClaimError,
    InvalidSignatureError,
    LifetimeExceededError,
    MalformedTokenError,
    MissingClaimError,
    MissingTokenError,
    SigningError,
    TokenTooLargeError,
    UnknownIssuerError,
    UnknownKeyError,
    WrongSubjectError,
)
from signing.keystore import ALLOWED_ALGORITHMS, Issuer, IssuerKey, KeyStore

__all__ = [
    "DEFAULT_LEEWAY",
    "MAX_TOKEN_BYTES",
    "TokenVerifier",
    "VerifiedToken",
    "mint",
    "verify",
]

MAX_TOKEN_BYTES: Final = 4096
DEFAULT_LEEWAY: Final = 30.0
_BAD_SIGNATURE: Final = "the token's signature does not match its issuer's key"
_TIME_CLAIMS: Final = ("exp", "nbf", "iat")
_EARLIEST: Final = datetime(1, 1, 1, tzinfo=UTC).timestamp()
_LATEST: Final = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
_HASHES: Final[dict[str, HashlibHash]] = {
    "HS256": HMACAlgorithm.SHA256,
    "HS384": HMACAlgorithm.SHA384,
    "HS512": HMACAlgorithm.SHA512,
}


class _KeyMemo:
    """Secrets that passed pyjwt's HMAC key checks, bounded, oldest dropped first.

    Only passes are kept: a refused key is checked, and refused, every time.
    Writes take a lock so a verifier may serve several threads.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("the memo needs room for at least one key")
        self._maxsize = maxsize
        self._prepared: dict[str | bytes, bytes] = {}
        self._lock = threading.Lock()

    def __contains__(self, secret: str | bytes) -> bool:
        return secret in self._prepared

    def get(self, secret: str | bytes) -> bytes | None:
        return self._prepared.get(secret)

    def add(self, secret: str | bytes, prepared: bytes) -> None:
        with self._lock:
            while len(self._prepared) >= self._maxsize:
                del self._prepared[next(iter(self._prepared))]
            self._prepared[secret] = prepared

    def discard(self, secret: str | bytes) -> None:
        with self._lock:
            self._prepared.pop(secret, None)

    def keep_only(self, kept: Collection[str | bytes]) -> None:
        with self._lock:
            self._prepared = {s: p for s, p in self._prepared.items() if s in kept}


class _HMAC(HMACAlgorithm):
    """pyjwt's HMAC, its key checks remembered in a verifier's memo if given.

    `prepare_key` refuses empty keys, and PEM, SSH, DER and JWK material passed
    as an HMAC secret (defences against algorithm confusion). It is a pure
    function of the key, and the same for every hash, yet pyjwt runs it for
    every token, raising and catching a JSONDecodeError for every ordinary
    secret: a large share of a fresh token's cost. Signing and verifying are
    pyjwt's.
    """

    def __init__(self, hash_alg: HashlibHash, memo: _KeyMemo | None = None) -> None:
        super().__init__(hash_alg)
        self._memo = memo

    def prepare_key(self, key: str | bytes) -> bytes:
        if self._memo is None:
            return super().prepare_key(key)
        prepared = self._memo.get(key)
        if prepared is None:
            prepared = super().prepare_key(key)
            self._memo.add(key, prepared)
        return prepared

    def check_key_length(self, key: bytes) -> str | None:
        # The length rule is `IssuerKey`'s, the only source of our secrets: the
        # hash size (RFC 7518 §3.2), or the previous release's floor for a
        # verify-only key, whose tokens pyjwt would otherwise warn about, each.
        return None


class _ClaimsLayer(jwt.PyJWT):
    """pyjwt's claims layer, refusing time claims that are not NumericDates.

    pyjwt takes `int()` of `exp`, `nbf` and `iat`: it accepts numeric strings
    and booleans, and calls `null` or an object a malformed token. The check
    runs between pyjwt's payload decoding (after the signature) and its claim
    validation; `_decode_payload` is pyjwt's hook for subclasses.
    """

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        payload = super()._decode_payload(decoded)
        for claim in _TIME_CLAIMS:
            if claim in payload:
                _check_numeric_date(claim, payload[claim])
        return payload


def _check_numeric_date(claim: str, value: object) -> None:
    """A NumericDate (RFC 7519 §2) is a JSON number: never a string, bool or null.

    It must also be finite and fall within the years 1 to 9999, the dates a
    `datetime` holds: `json.loads` reads `NaN`, `Infinity` and `1e400` (as
    infinity), and ints of up to 4300 digits, which `float()` cannot convert.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidClaimError(f"the {claim!r} claim must be a number")
    if not _EARLIEST <= value <= _LATEST:  # False for NaN
        raise InvalidClaimError(
            f"the {claim!r} claim must be a date from year 1 to 9999, in seconds since 1970"
        )


def _jwt(memo: _KeyMemo | None) -> jwt.PyJWT:
    """A private PyJWT that knows only our HMAC algorithms.

    Its `PyJWS` is ours as well: pyjwt's module-level registry, which every
    other user of pyjwt in the process shares, stays exactly as pyjwt made it.
    `PyJWT` builds its own `PyJWS` with pyjwt's stock algorithms; pyjwt wires
    its module-level `PyJWT` to its module-level `PyJWS` by the same assignment
    (the end of `jwt/api_jwt.py`).
    """
    jws = jwt.PyJWS(algorithms=[])
    for name, hash_alg in _HASHES.items():
        jws.register_algorithm(name, _HMAC(hash_alg, memo))
    claims_layer = _ClaimsLayer()
    claims_layer._jws = jws
    return claims_layer


# Remembers nothing: pyjwt's key checks run for every token.
_PLAIN_JWT: Final = _jwt(memo=None)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class VerifiedToken:
    """A token whose signature, issuer and time claims have been checked."""

    issuer: str
    kid: str
    subject: str | None
    expires_at: float | None
    token_id: str | None
    transformations: object  # the raw claim; `transforms` parses it

    def ensure_subject(self, image_id: str) -> None:
        """A token with `sub` is good for that one image only."""
        if self.subject is not None and self.subject != image_id:
            raise WrongSubjectError(
                "the token's subject is another image than the one requested"
            )


def mint(
    key: IssuerKey,
    *,
    issuer_id: str,
    transformations: object,
    ttl: float | None = None,
    subject: str | None = None,
    audience: str | None = None,
    now: float | None = None,
    include_kid: bool = True,
) -> str:
    """A token for backends to hand out; each has its own `jti` and `iat`.

    `include_kid=False` leaves the key unnamed, as in seed 004's tokens; the
    gateway then tries each of the issuer's keys.
    """
    if key.verify_only:
        raise ValueError(
            f"key {key.kid!r} may only verify tokens; mint with a newer key"
        )
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "iss": issuer_id,
        "iat": issued,
        "jti": secrets.token_urlsafe(12),
        "transformations": transformations,
    }
    if ttl is not None:
        claims["exp"] = issued + int(ttl)
    if subject is not None:
        claims["sub"] = subject
    if audience is not None:
        claims["aud"] = audience
    return _PLAIN_JWT.encode(
        claims,
        key.secret,
        algorithm=key.algorithm,
        headers={"kid": key.kid, "typ": "JWT"} if include_kid else {"typ": "JWT"},
    )


class TokenVerifier:
    """Verifies tokens against `keys`, remembering which secrets passed pyjwt's checks.

    The memo is this instance's own and bounded; the gateway keeps one verifier
    and, whenever the catalog changes, calls `retain` with the active keys (or
    `forget` with a revoked one) so that no revoked secret stays in memory.
    """

    def __init__(
        self,
        keys: KeyStore,
        *,
        leeway: float = DEFAULT_LEEWAY,
        audience: str | None = None,
        max_bytes: int = MAX_TOKEN_BYTES,
        memo_size: int = 256,
    ) -> None:
        self.keys = keys
        self.leeway = leeway
        self.audience = audience
        self.max_bytes = max_bytes
        self._memo = _KeyMemo(memo_size)
        self._jwt = _jwt(self._memo)

    def verify(self, token: str | None, *, now: float | None = None) -> VerifiedToken:
        """Check a token completely or raise a `SigningError` leaf (see `verify`)."""
        return _verify(
            token,
            self.keys,
            self._jwt,
            leeway=self.leeway,
            audience=self.audience,
            max_bytes=self.max_bytes,
            now=now,
        )

    def forget(self, key: IssuerKey) -> None:
        """Drop a (revoked) key's secret from the memo."""
        self._memo.discard(key.secret)

    def retain(self, active: Collection[IssuerKey]) -> None:
        """Drop every secret from the memo but those of the `active` keys."""
        self._memo.keep_only({key.secret for key in active})

    def remembers(self, key: IssuerKey) -> bool:
        """Whether the key's secret is in the memo (for tests and diagnostics)."""
        return key.secret in self._memo


def verify(
    token: str | None,
    keys: KeyStore,
    *,
    leeway: float = DEFAULT_LEEWAY,
    audience: str | None = None,
    max_bytes: int = MAX_TOKEN_BYTES,
    now: float | None = None,
) -> VerifiedToken:
    """Check a token completely or raise a `SigningError` leaf.

    The keys are chosen from the unverified header (`alg`, `kid`) and, unless the
    `kid` alone names the issuer, from the unverified `iss`. The claims are then
    verified with those keys and with `iss` pinned to that issuer.

    Remembers nothing: pyjwt checks each key afresh for every token. A caller
    that verifies many tokens keeps a `TokenVerifier` instead.
    """
    return _verify(
        token,
        keys,
        _PLAIN_JWT,
        leeway=leeway,
        audience=audience,
        max_bytes=max_bytes,
        now=now,
    )


def _verify(
    token: str | None,
    keys: KeyStore,
    pyjwt: jwt.PyJWT,
    *,
    leeway: float,
    audience: str | None,
    max_bytes: int,
    now: float | None,
) -> VerifiedToken:
    if not token:
        raise MissingTokenError("a token is required")
    # Refused before any decoding: bounded work for hostile input. The limit
    # counts characters, never encoding the token (a lone surrogate has no
    # UTF-8); only ASCII goes on, so every token decoded has as many bytes.
    if len(token) > max_bytes:
        raise TokenTooLargeError(
            f"the token is {len(token)} characters; at most {max_bytes} are accepted"
        )
    if not token.isascii():
        # A JWS in compact form is base64url and dots only (RFC 7515 §7.1).
        raise MalformedTokenError("the token may contain only ASCII characters")
    algorithm, kid = _header(token.partition(".")[0])
    if algorithm not in ALLOWED_ALGORITHMS:
        raise AlgorithmNotAllowedError(
            f"algorithm {algorithm!r} is not allowed; use one of "
            + ", ".join(sorted(ALLOWED_ALGORITHMS))
        )
    if kid is not None:
        # The common case: a `kid` that one issuer owns names issuer and key, and
        # the payload is read once, verified. A token claiming another issuer
        # falls through to the full path below, which names the precise error.
        owner = keys.issuer_for_kid(kid)
        key = owner.key(kid) if owner is not None else None
        if owner is not None and key is not None and key.algorithm == algorithm:
            try:
                claims = _decode(
                    pyjwt, token, key, owner, leeway=leeway, audience=audience
                )
            except jwt.InvalidIssuerError:
                pass
            except jwt.MissingRequiredClaimError as exc:
                if exc.claim != "iss":
                    raise _translate(exc) from exc
            except jwt.PyJWTError as exc:
                raise _translate(exc) from exc
            else:
                return _verified(claims, owner, key, leeway=leeway, now=now)

    issuer_id = _peek_issuer(token)
    if issuer_id is None:
        raise MissingClaimError("the token has no 'iss' claim")
    if not isinstance(issuer_id, str):
        raise InvalidClaimError("the 'iss' claim must be a string")
    issuer = keys.issuer(issuer_id)
    if issuer is None:
        raise UnknownIssuerError("the token's issuer is not known")
    if kid is not None:
        key = issuer.key(kid)
        if key is None:
            raise UnknownKeyError("the token's 'kid' names no key of its issuer")
        candidates: tuple[IssuerKey, ...] = (key,)
    else:
        # Tokens without `kid` (the seed's) are tried against each of the
        # issuer's keys, newest first, so that rotation needs no downtime.
        candidates = issuer.keys
    candidates = tuple(k for k in candidates if k.algorithm == algorithm)
    if not candidates:
        raise AlgorithmNotAllowedError(
            f"algorithm {algorithm!r} is not the algorithm of the issuer's key"
        )
    for key in candidates:
        try:
            claims = _decode(
                pyjwt, token, key, issuer, leeway=leeway, audience=audience
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise _translate(exc) from exc
        return _verified(claims, issuer, key, leeway=leeway, now=now)
    raise InvalidSignatureError(_BAD_SIGNATURE)


def _decode(
    pyjwt: jwt.PyJWT,
    token: str,
    key: IssuerKey,
    issuer: Issuer,
    *,
    leeway: float,
    audience: str | None,
) -> dict[str, object]:
    """pyjwt's full verification: signature, `iss` pinned, time claims, `aud`."""
    required = ["iss", "exp"] if issuer.policy.require_exp else ["iss"]
    if audience is not None:
        required.append("aud")
    claims: dict[str, object] = pyjwt.decode(
        token,
        key.secret,
        algorithms=[key.algorithm],
        issuer=issuer.id,
        audience=audience,
        leeway=leeway,
        options={"require": required, "verify_aud": audience is not None},
    )
    return claims


def _verified(
    claims: dict[str, object],
    issuer: Issuer,
    key: IssuerKey,
    *,
    leeway: float,
    now: float | None,
) -> VerifiedToken:
    """Our own rules on claims pyjwt has verified: lifetime cap, `sub` type."""
    expires_at = _number(claims.get("exp"))
    max_lifetime = issuer.policy.max_lifetime
    if max_lifetime is not None and expires_at is not None:
        start = _number(claims.get("iat"))
        if start is None:
            start = time.time() if now is None else now
        if expires_at - start > max_lifetime + leeway:
            raise LifetimeExceededError(
                f"the token lives {int(expires_at - start)} s; the issuer allows {max_lifetime} s"
            )
    subject = claims.get("sub")
    if subject is not None and not isinstance(subject, str):
        raise InvalidClaimError("the 'sub' claim must be a string")
    token_id = claims.get("jti")
    return VerifiedToken(
        issuer=issuer.id,
        kid=key.kid,
        subject=subject,
        expires_at=expires_at,
        token_id=token_id if isinstance(token_id, str) else None,
        transformations=claims.get("transformations", []),
    )


@functools.lru_cache(maxsize=256)
def _header(segment: str) -> tuple[str | None, str | None]:
    """The unverified JOSE header's `alg` and `kid`, only to choose the keys.

    An issuer's tokens share one header (`{"alg":…,"kid":…,"typ":"JWT"}`), so it
    is parsed once; the bound keeps hostile variety to 256 entries of at most
    4 KiB. Nothing read here is trusted: pyjwt then verifies the whole token.
    """
    header = _segment_json(segment)
    if not isinstance(header, dict):
        raise MalformedTokenError("the token's header must be a JSON object")
    alg, kid = header.get("alg"), header.get("kid")
    if "alg" in header and not isinstance(alg, str):
        # Also keeps an unhashable `alg` (a list, an object) from the set lookup.
        raise MalformedTokenError("the token's 'alg' must be a string")
    if "kid" in header and not isinstance(kid, str):
        raise MalformedTokenError("the token's 'kid' must be a string")
    return alg, kid


def _peek_issuer(token: str) -> object:
    """The unverified `iss`, to find the keys of a token whose `kid` did not.

    pyjwt's full decode validates every character of every segment in Python,
    and the verification that follows does so again; this peek uses pyjwt's
    plain base64url decoding and reads no more than `iss`.
    """
    segments = token.split(".")
    if len(segments) != 3:
        raise MalformedTokenError("the token is not a well-formed JWT")
    payload = _segment_json(segments[1])
    if not isinstance(payload, dict):
        raise MalformedTokenError("the token's payload must be a JSON object")
    return payload.get("iss")


def _segment_json(segment: str) -> object:
    try:
        return json.loads(jwt.utils.base64url_decode(segment))
    except (ValueError, RecursionError) as exc:
        raise MalformedTokenError("the token is not a well-formed JWT") from exc


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _translate(exc: jwt.PyJWTError) -> SigningError:
    match exc:
        case jwt.InvalidSignatureError():
            return InvalidSignatureError(_BAD_SIGNATURE)
        case jwt.ExpiredSignatureError():
            return ExpiredTokenError("the token has expired")
        case jwt.ImmatureSignatureError():
            return ImmatureTokenError("the token is not valid yet")
        case jwt.MissingRequiredClaimError():
            return MissingClaimError(f"the token has no {exc.claim!r} claim")
        case jwt.InvalidAlgorithmError():
            return AlgorithmNotAllowedError("the token's algorithm is not allowed")
        case (
            jwt.InvalidIssuedAtError()
            | jwt.InvalidAudienceError()
            | jwt.InvalidIssuerError()
            | jwt.exceptions.InvalidSubjectError()
            | jwt.exceptions.InvalidJTIError()
        ):
            return InvalidClaimError(f"a claim is invalid: {exc}")
        case jwt.DecodeError():
            return MalformedTokenError("the token is not a well-formed JWT")
        case jwt.InvalidTokenError():
            # pyjwt raises the base class itself only for the header: a `crit`
            # (RFC 7515 §4.1.11) or `b64` (RFC 7797) it does not accept.
            return MalformedTokenError(
                "the token's 'crit' or 'b64' header is not supported"
            )
        case _:
            return SigningError("the token is invalid")
