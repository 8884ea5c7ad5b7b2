"""Our own pyjwt instances: its JWS and claims layers with our HMAC classes.

pyjwt's module-level functions share one algorithm registry with every other
user of pyjwt in the process; ours are private instances, so that what we
change (a memo of keys that passed pyjwt's key checks, no per-token key
length warning, NumericDate checks on `exp`, `nbf` and `iat`, the base64url
alphabet checked in C) changes nothing for anyone else.
"""

from __future__ import annotations

import binascii
import hmac
import json
import threading
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, Final

import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.types import HashlibHash
from jwt.utils import base64url_decode

from signing.errors import InvalidClaimError

__all__ = [
    "FAST_SEGMENTS",
    "MINTING_JWT",
    "PLAIN_JWT",
    "ClaimsLayer",
    "KeyMemo",
    "forget_minting_secrets",
    "minting_remembers",
    "private_jwt",
]

_TIME_CLAIMS: Final = ("exp", "nbf", "iat")
_EARLIEST: Final = datetime(1, 1, 1, tzinfo=UTC).timestamp()
_LATEST: Final = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
_HASHES: Final[dict[str, HashlibHash]] = {
    "HS256": HMACAlgorithm.SHA256,
    "HS384": HMACAlgorithm.SHA384,
    "HS512": HMACAlgorithm.SHA512,
}


class KeyMemo:
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

    def __init__(self, hash_alg: HashlibHash, memo: KeyMemo | None = None) -> None:
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

    def sign(self, msg: bytes, key: bytes) -> bytes:
        # pyjwt's `hmac.new(key, msg, hash).digest()` in one call: the same
        # HMAC, without an HMAC object around OpenSSL's (4.1 µs here, 2.5 as
        # one call), once for each token verified.
        return hmac.digest(key, msg, self.hash_alg)

    def check_key_length(self, key: bytes) -> str | None:
        # The length rule is `IssuerKey`'s, the only source of our secrets: the
        # hash size (RFC 7518 §3.2), or the previous release's floor for a
        # verify-only key, whose tokens pyjwt would otherwise warn about, each.
        return None


class ClaimsLayer(jwt.PyJWT):
    """pyjwt's claims layer, refusing time claims that are not NumericDates,
    and decoding a payload once where it was peeked at.

    pyjwt takes `int()` of `exp`, `nbf` and `iat`: it accepts numeric strings
    and booleans, and calls `null` or an object a malformed token. The check
    runs between pyjwt's payload decoding (after the signature) and its claim
    validation; `_decode_payload` is pyjwt's hook for subclasses.

    A token without `kid` is read before it is verified, for the `iss` that
    finds its keys (`peek`). pyjwt would then parse the same payload again:
    when the bytes it verified are the bytes peeked at, the peek's parse is
    taken instead (`json.loads` of equal bytes is an equal object), once.
    """

    def __init__(self) -> None:
        super().__init__()
        # Per thread: a verifier may serve several.
        self._peeked = threading.local()

    def peek(self, segment: str) -> object:
        """The unverified JSON of a payload `segment` (lenient base64url, as
        pyjwt's own `base64url_decode`), kept for this thread's next decode."""
        data = base64url_decode(segment)
        payload = json.loads(data)
        self._peeked.last = (data, payload)
        return payload

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        peeked: tuple[bytes, object] | None = getattr(self._peeked, "last", None)
        self._peeked.last = None
        if (
            peeked is not None
            and type(peeked[1]) is dict
            and peeked[0] == decoded["payload"]
        ):
            payload: dict[str, Any] = peeked[1]
        else:
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


# The pyjwt releases whose `PyJWS._decode_base64url_segment` `_segment` was
# checked against, line by line and by the property tests; on any other
# release our instances keep pyjwt's own.
_CHECKED_PYJWT: Final = frozenset({"2.15.1"})
FAST_SEGMENTS: Final = jwt.__version__ in _CHECKED_PYJWT
_BASE64URL_ALPHABET: Final = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)
_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")
# By a stripped segment's length modulo 4: the padding binascii wants, and the
# last characters that carry set bits past the decoded bytes (6 bits a
# character: 2 characters hold 1 byte and 4 spare bits, 3 hold 2 and 2 spare).
# Such a segment is not the canonical encoding of its bytes: pyjwt refuses it
# by encoding the bytes again and comparing.
_PADDING: Final = (b"", b"", b"==", b"=")
_LOOSE_ENDS: Final = (
    frozenset[int](),
    frozenset[int](),
    frozenset(c for i, c in enumerate(_BASE64URL_ALPHABET) if i & 0b1111),
    frozenset(c for i, c in enumerate(_BASE64URL_ALPHABET) if i & 0b11),
)


def _segment(segment: bytes, name: str) -> bytes:
    """pyjwt 2.15.1's `PyJWS._decode_base64url_segment`, its checks done in C.

    pyjwt tests each byte of each segment against the base64url alphabet in a
    Python generator, the largest single cost of decoding a token, then
    decodes through `base64`'s wrappers and encodes the bytes again to see
    that the segment was their canonical encoding. Here `bytes.translate`
    deletes the alphabet and whatever is left is refused, the last character
    is looked up for spare bits instead of the second encoding, and binascii
    decodes. It accepts and refuses exactly the segments pyjwt does, with
    pyjwt's own error (the property test).
    """
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if padding > 2 or (padding and len(segment) % 4 != 0):
        raise jwt.DecodeError(f"Invalid {name} padding")
    rest = len(stripped) % 4
    if (
        rest == 1
        or stripped.translate(None, _BASE64URL_ALPHABET)
        or (rest and stripped[-1] in _LOOSE_ENDS[rest])
    ):
        raise jwt.DecodeError(f"Invalid {name} padding")
    return binascii.a2b_base64(stripped.translate(_TO_STANDARD) + _PADDING[rest])


class _JWS(jwt.PyJWS):
    """pyjwt's JWS layer, decoding segments with `_segment` where it was checked."""

    if FAST_SEGMENTS:
        _decode_base64url_segment = staticmethod(_segment)


def private_jwt(memo: KeyMemo | None) -> ClaimsLayer:
    """A private PyJWT that knows only our HMAC algorithms.

    Its `PyJWS` is ours as well: pyjwt's module-level registry, which every
    other user of pyjwt in the process shares, stays exactly as pyjwt made it.
    `PyJWT` builds its own `PyJWS` with pyjwt's stock algorithms; pyjwt wires
    its module-level `PyJWT` to its module-level `PyJWS` by the same assignment
    (the end of `jwt/api_jwt.py`).
    """
    jws = _JWS(algorithms=[])
    for name, hash_alg in _HASHES.items():
        jws.register_algorithm(name, _HMAC(hash_alg, memo))
    claims_layer = ClaimsLayer()
    claims_layer._jws = jws
    return claims_layer


# Remembers nothing: pyjwt's key checks run for every token.
PLAIN_JWT: Final = private_jwt(memo=None)
# For minting: a process signs with few secrets (its issuers' newest keys), and
# a page of 100 images signs 200 links; their checks, 60% of a mint's cost,
# are remembered. A secret that fails them is refused every time.
_MINTING_SECRETS: Final = KeyMemo(maxsize=256)
MINTING_JWT: Final = private_jwt(memo=_MINTING_SECRETS)


def forget_minting_secrets() -> None:
    """Drop every secret minting remembers, as a verifier's `retain(())` does.

    The gateway calls it on every catalog change, so that a revoked key's
    secret does not outlive the revocation in this process's memory; the
    keys still in use are checked again once each, at their next mint.
    """
    _MINTING_SECRETS.keep_only(())


def minting_remembers(secret: str | bytes) -> bool:
    """Whether minting remembers `secret` (for tests and diagnostics)."""
    return secret in _MINTING_SECRETS
