"""Mint and verify transformation tokens (our claims layer over pyjwt's JWS)."""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

import jwt

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
    WrongTokenTypeError,
)
from signing.jws import MINTING_JWT, PLAIN_JWT, ClaimsLayer, KeyMemo, private_jwt
from signing.keystore import ALLOWED_ALGORITHMS, Issuer, IssuerKey, KeyStore

__all__ = [
    "DEFAULT_LEEWAY",
    "MAX_TOKEN_BYTES",
    "KeyedVerifier",
    "TokenVerifier",
    "VerifiedToken",
    "mint",
    "verify",
]

MAX_TOKEN_BYTES: Final = 4096
DEFAULT_LEEWAY: Final = 30.0
_BAD_SIGNATURE: Final = "the token's signature does not match its issuer's key"
_ACCESS_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})


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
    return MINTING_JWT.encode(
        claims,
        key.secret,
        algorithm=key.algorithm,
        headers={"kid": key.kid, "typ": "JWT"} if include_kid else {"typ": "JWT"},
    )


class KeyedVerifier:
    """What both kinds of verifier share: the key store, the rules' settings,
    and a memo of the secrets that passed pyjwt's checks.

    The memo is this instance's own and bounded; the gateway keeps one verifier
    of each kind and, whenever the catalog changes, calls `retain` with the
    active keys (or `forget` with a revoked one) so that no revoked secret
    stays in memory.
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
        self._memo = KeyMemo(memo_size)
        self._jwt = private_jwt(self._memo)

    def forget(self, key: IssuerKey) -> None:
        """Drop a (revoked) key's secret from the memo."""
        self._memo.discard(key.secret)

    def retain(self, active: Collection[IssuerKey]) -> None:
        """Drop every secret from the memo but those of the `active` keys."""
        self._memo.keep_only({key.secret for key in active})

    def remembers(self, key: IssuerKey) -> bool:
        """Whether the key's secret is in the memo (for tests and diagnostics)."""
        return key.secret in self._memo


class TokenVerifier(KeyedVerifier):
    """Verifies transformation tokens against `keys` (see `KeyedVerifier`)."""

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
        PLAIN_JWT,
        leeway=leeway,
        audience=audience,
        max_bytes=max_bytes,
        now=now,
    )


def _verify(
    token: str | None,
    keys: KeyStore,
    pyjwt: ClaimsLayer,
    *,
    leeway: float,
    audience: str | None,
    max_bytes: int,
    now: float | None,
) -> VerifiedToken:
    claims, issuer, key = verified_claims(
        token,
        keys,
        pyjwt,
        leeway=leeway,
        audience=audience,
        max_bytes=max_bytes,
        access=False,
    )
    return _verified(claims, issuer, key, leeway=leeway, now=now)


def verified_claims(
    token: str | None,
    keys: KeyStore,
    pyjwt: ClaimsLayer,
    *,
    leeway: float,
    audience: str | None,
    max_bytes: int,
    access: bool,
) -> tuple[dict[str, object], Issuer, IssuerKey]:
    """The claims of a token pyjwt verified with its issuer's key; either kind.

    `access` says which kind is wanted: an access token (`typ: at+jwt`) is
    never taken for a transformation token, nor the reverse, since `sub`
    names a user in one and an image in the other.
    """
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
    algorithm, kid, typ = _header(token.partition(".")[0])
    if is_access_type(typ) != access:
        raise WrongTokenTypeError(
            "an access token is not a transformation token"
            if typ is not None and not access
            else "the token is not an access token (its header needs typ 'at+jwt')"
        )
    if algorithm not in ALLOWED_ALGORITHMS:
        refused = (
            "the token's header names no algorithm ('alg')"
            if algorithm is None
            else f"algorithm {algorithm!r} is not allowed"
        )
        raise AlgorithmNotAllowedError(
            f"{refused}; use one of " + ", ".join(sorted(ALLOWED_ALGORITHMS))
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
                    pyjwt,
                    token,
                    key,
                    owner,
                    leeway=leeway,
                    audience=audience,
                    access=access,
                )
            except jwt.InvalidIssuerError:
                pass
            except jwt.MissingRequiredClaimError as exc:
                if exc.claim != "iss":
                    raise _translate(exc) from exc
            except jwt.PyJWTError as exc:
                raise _translate(exc) from exc
            else:
                return claims, owner, key

    issuer_id = _peek_issuer(pyjwt, token)
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
                pyjwt,
                token,
                key,
                issuer,
                leeway=leeway,
                audience=audience,
                access=access,
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise _translate(exc) from exc
        return claims, issuer, key
    raise InvalidSignatureError(_BAD_SIGNATURE)


def _decode(
    pyjwt: ClaimsLayer,
    token: str,
    key: IssuerKey,
    issuer: Issuer,
    *,
    leeway: float,
    audience: str | None,
    access: bool,
) -> dict[str, object]:
    """pyjwt's full verification: signature, `iss` pinned, time claims, `aud`.

    `aud` is always checked, as pyjwt does by default: without an `audience`
    of ours, a token that names any audience was meant for another service
    and is refused (RFC 7519 §4.1.3).
    """
    if access:
        required = ["iss", "exp", "sub"]
    else:
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
        options={"require": required},
    )
    if audience is None and claims.get("aud", []) != []:
        # pyjwt reads a falsy `aud` (0, false, {}, "") as none; only an absent
        # one or an empty list names no audience (RFC 7519 §4.1.3).
        raise jwt.InvalidAudienceError("Invalid audience")
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


def is_access_type(typ: str | None) -> bool:
    """RFC 9068 §4: `at+jwt`, or its full media type, in any case."""
    return typ is not None and typ.lower() in _ACCESS_TYPES


def _read_header(segment: str) -> tuple[str | None, str | None, str | None]:
    """The unverified JOSE header's `alg`, `kid` and `typ`, to choose the keys
    and keep access and transformation tokens apart.

    Nothing read here is trusted: pyjwt then verifies the whole token.
    """
    header = _segment_json(segment)
    if not isinstance(header, dict):
        raise MalformedTokenError("the token's header must be a JSON object")
    alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
    if "alg" in header and not isinstance(alg, str):
        # Also keeps an unhashable `alg` (a list, an object) from the set lookup.
        raise MalformedTokenError("the token's 'alg' must be a string")
    if "kid" in header and not isinstance(kid, str):
        raise MalformedTokenError("the token's 'kid' must be a string")
    if "typ" in header and not isinstance(typ, str):
        raise MalformedTokenError("the token's 'typ' must be a string")
    return alg, kid, typ


# An issuer's tokens share one header (`{"alg":…,"kid":…,"typ":"JWT"}`), so it is
# parsed once; the bound keeps hostile variety to 256 entries of at most 4 KiB.
# Wrapped by a call, not a decorator: mutation testing skips decorated functions.
_header: Final = functools.lru_cache(maxsize=256)(_read_header)


def _peek_issuer(pyjwt: ClaimsLayer, token: str) -> object:
    """The unverified `iss`, to find the keys of a token whose `kid` did not.

    Read with pyjwt's plain base64url decoding; the verification that follows
    checks every segment as pyjwt does, and takes this parse of the payload
    only where it decoded the very same bytes (`ClaimsLayer.peek`).
    """
    segments = token.split(".")
    if len(segments) != 3:
        raise MalformedTokenError("the token is not a well-formed JWT")
    try:
        payload = pyjwt.peek(segments[1])
    except (ValueError, RecursionError) as exc:
        raise MalformedTokenError("the token is not a well-formed JWT") from exc
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
