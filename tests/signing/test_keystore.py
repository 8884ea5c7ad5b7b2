"""Signing keys: RFC 7518 §3.2 minimum lengths, per algorithm."""

from __future__ import annotations

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
    with pytest.raises(ValueError, match="not allowed"):
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
        ValueError, match=f"{algorithm} secret needs at least {minimum} bytes"
    ):
        IssuerKey(kid="k", secret=secret, algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_a_secret_of_exactly_the_hash_size_is_accepted(algorithm: str) -> None:
    secret = "s" * MIN_SECRET_BYTES[algorithm]
    assert IssuerKey(kid="k", secret=secret, algorithm=algorithm).secret == secret
