"""Signing keys: RFC 7518 §3.2 minimum lengths, per algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings

import pytest

from signing import (
    MIN_SECRET_BYTES,
    InMemoryKeyStore,
    Issuer,
    IssuerKey,
    TokenVerifier,
    generate_secret,
    mint,
    verify,
)
from tests.helpers import exactly

ISSUER = "6b6fdb7b-65cb-4acf-97b9-d25eff795348"


@pytest.mark.parametrize(
    ("algorithm", "size"),
    [
        pytest.param("HS256", 32, id="HS256"),
        pytest.param("HS384", 48, id="HS384"),
        pytest.param("HS512", 64, id="HS512"),
    ],
)
def test_minimum_is_the_hash_size(algorithm: str, size: int) -> None:
    assert MIN_SECRET_BYTES[algorithm] == size


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_generated_key_mints_and_verifies_without_a_warning(algorithm: str) -> None:
    key = IssuerKey(kid="k", secret=generate_secret(algorithm), algorithm=algorithm)
    keys = InMemoryKeyStore({ISSUER: Issuer(id=ISSUER, name="i", keys=(key,))})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        token = mint(key, issuer_id=ISSUER, transformations=[])
        assert verify(token, keys).kid == "k"
        assert TokenVerifier(keys).verify(token).kid == "k"


def test_generated_secret_defaults_to_hs256() -> None:
    assert len(generate_secret().encode()) >= MIN_SECRET_BYTES["HS256"]


def test_generated_secrets_differ() -> None:
    assert generate_secret("HS512") != generate_secret("HS512")


def test_no_secret_for_an_algorithm_not_allowed() -> None:
    with pytest.raises(ValueError, match=exactly("algorithm 'RS256' is not allowed")):
        generate_secret("RS256")


@pytest.mark.parametrize(
    ("algorithm", "secret"),
    [
        pytest.param("HS256", "s" * 31, id="HS256-31"),
        pytest.param("HS384", "s" * 47, id="HS384-47"),
        pytest.param("HS512", "s" * 43, id="HS512-43-previous-release"),
        pytest.param("HS512", "s" * 63, id="HS512-63"),
    ],
)
def test_a_secret_shorter_than_its_hash_is_refused(algorithm: str, secret: str) -> None:
    minimum = MIN_SECRET_BYTES[algorithm]
    with pytest.raises(
        ValueError,
        match=exactly(f"an {algorithm} secret needs at least {minimum} bytes"),
    ):
        IssuerKey(kid="k", secret=secret, algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_a_secret_of_exactly_the_hash_size_is_accepted(algorithm: str) -> None:
    secret = "s" * MIN_SECRET_BYTES[algorithm]
    assert IssuerKey(kid="k", secret=secret, algorithm=algorithm).secret == secret


# Keys the previous release stored (HS384/HS512 with 32-byte floor secrets) load
# as verify-only: their tokens keep verifying, silently; nothing new is minted.

LEGACY_SECRET = "L" * 43  # generate_secret() of the previous release, any algorithm


def legacy_keys(key: IssuerKey) -> InMemoryKeyStore:
    return InMemoryKeyStore({ISSUER: Issuer(id=ISSUER, name="i", keys=(key,))})


def _part(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign_legacy(algorithm: str) -> str:
    """A token the previous release minted (pyjwt now warns when making one)."""
    head = _part(json.dumps({"alg": algorithm, "kid": "old", "typ": "JWT"}).encode())
    body = _part(json.dumps({"iss": ISSUER}).encode())
    digest = {"HS384": hashlib.sha384, "HS512": hashlib.sha512}[algorithm]
    mac = hmac.new(LEGACY_SECRET.encode(), f"{head}.{body}".encode(), digest)
    return f"{head}.{body}.{_part(mac.digest())}"


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_a_stored_short_key_loads_as_verify_only(algorithm: str) -> None:
    key = IssuerKey.stored(kid="old", secret=LEGACY_SECRET, algorithm=algorithm)
    assert key.verify_only


def test_a_stored_key_of_full_length_can_mint() -> None:
    key = IssuerKey.stored(kid="k", secret=generate_secret("HS512"), algorithm="HS512")
    assert not key.verify_only


@pytest.mark.parametrize("algorithm", ["HS256", "HS512"])
def test_a_stored_key_below_the_previous_floor_is_refused(algorithm: str) -> None:
    with pytest.raises(
        ValueError, match=exactly("a verify-only secret needs at least 32 bytes")
    ):
        IssuerKey.stored(kid="k", secret="s" * 31, algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_a_verify_only_key_verifies_without_a_warning(algorithm: str) -> None:
    key = IssuerKey(
        kid="old", secret=LEGACY_SECRET, algorithm=algorithm, verify_only=True
    )
    token = _sign_legacy(algorithm)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verify(token, legacy_keys(key)).kid == "old"
        assert TokenVerifier(legacy_keys(key)).verify(token).kid == "old"


def test_a_verify_only_key_cannot_mint() -> None:
    key = IssuerKey(
        kid="old", secret=LEGACY_SECRET, algorithm="HS512", verify_only=True
    )
    with pytest.raises(ValueError, match="verify"):
        mint(key, issuer_id=ISSUER, transformations=[])


# A key's bounds, at their exact edges.


def test_a_kid_of_64_characters_is_the_longest() -> None:
    assert IssuerKey(kid="k" * 64, secret="s" * 32).kid == "k" * 64
    with pytest.raises(ValueError, match=exactly("a kid has 1 to 64 characters")):
        IssuerKey(kid="k" * 65, secret="s" * 32)


def test_a_secret_is_measured_in_utf8_bytes() -> None:
    # 16 two-byte characters are 32 bytes: enough for HS256.
    assert IssuerKey(kid="k", secret="é" * 16).secret == "é" * 16
    with pytest.raises(
        ValueError, match=exactly("an HS256 secret needs at least 32 bytes")
    ):
        IssuerKey(kid="k", secret="é" * 15 + "s")


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_a_verify_only_secret_needs_the_previous_floor(algorithm: str) -> None:
    key = IssuerKey(kid="k", secret="s" * 32, algorithm=algorithm, verify_only=True)
    assert key.verify_only
    with pytest.raises(
        ValueError, match=exactly("a verify-only secret needs at least 32 bytes")
    ):
        IssuerKey(kid="k", secret="s" * 31, algorithm=algorithm, verify_only=True)


def test_an_algorithm_not_allowed_is_named() -> None:
    with pytest.raises(ValueError, match=exactly("algorithm 'HS1' is not allowed")):
        IssuerKey(kid="k", secret="s" * 64, algorithm="HS1")


@pytest.mark.parametrize(
    ("algorithm", "size", "verify_only"),
    [
        pytest.param("HS256", 32, False, id="HS256-32"),
        pytest.param("HS384", 47, True, id="HS384-47"),
        pytest.param("HS384", 48, False, id="HS384-48"),
        pytest.param("HS512", 32, True, id="HS512-32"),
        pytest.param("HS512", 63, True, id="HS512-63"),
        pytest.param("HS512", 64, False, id="HS512-64"),
    ],
)
def test_a_stored_key_is_verify_only_below_its_hash_size(
    algorithm: str, size: int, verify_only: bool
) -> None:
    key = IssuerKey.stored(kid="k", secret="s" * size, algorithm=algorithm)
    assert (key.kid, key.secret, key.algorithm) == ("k", "s" * size, algorithm)
    assert key.verify_only is verify_only


def test_a_stored_key_of_an_algorithm_not_allowed_is_refused() -> None:
    with pytest.raises(ValueError, match=exactly("algorithm 'RS256' is not allowed")):
        IssuerKey.stored(kid="k", secret="s" * 64, algorithm="RS256")


# Issuers and the in-memory store.

SHORT = IssuerKey(kid="old", secret="s" * 32, algorithm="HS512", verify_only=True)
FULL = IssuerKey(kid="new", secret="f" * 64, algorithm="HS512")
OTHER = IssuerKey(kid="other", secret="o" * 32)


def test_the_signing_key_is_the_newest_that_may_mint() -> None:
    assert Issuer(id=ISSUER, name="i", keys=(SHORT, FULL, OTHER)).signing_key is FULL
    assert Issuer(id=ISSUER, name="i", keys=(OTHER, FULL)).signing_key is OTHER
    assert Issuer(id=ISSUER, name="i", keys=(SHORT,)).signing_key is None


def test_an_issuer_finds_its_key_by_kid() -> None:
    issuer = Issuer(id=ISSUER, name="i", keys=(FULL, OTHER))
    assert issuer.key("other") is OTHER
    assert issuer.key("new") is FULL
    assert issuer.key("missing") is None


def test_the_store_finds_the_one_issuer_owning_a_kid() -> None:
    second = "0b6a4b55-7cc4-4a4f-9e0e-8f1a3f2f6f10"
    first_issuer = Issuer(id=ISSUER, name="i", keys=(FULL, OTHER))
    keys = InMemoryKeyStore(
        {
            ISSUER: first_issuer,
            second: Issuer(id=second, name="j", keys=(OTHER,)),
        }
    )
    assert keys.issuer(ISSUER) is first_issuer
    assert keys.issuer("unknown") is None
    assert keys.issuer_for_kid("new") is first_issuer
    assert keys.issuer_for_kid("other") is None  # owned by both
    assert keys.issuer_for_kid("missing") is None
