"""Minting: the header and claims of a minted token, with each allowed algorithm."""

from __future__ import annotations

import time

import jwt
import pytest

from signing import (
    InMemoryKeyStore,
    Issuer,
    IssuerKey,
    generate_secret,
    mint,
    verify,
)
from tests.helpers import exactly
from tests.signing.test_tokens import ISSUER, NEW, STEPS

ALGORITHMS = pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])


def key_for(algorithm: str) -> IssuerKey:
    return IssuerKey(
        kid=f"k-{algorithm}", secret=generate_secret(algorithm), algorithm=algorithm
    )


@ALGORITHMS
def test_a_token_is_signed_with_its_keys_algorithm(algorithm: str) -> None:
    key = key_for(algorithm)
    token = mint(key, issuer_id=ISSUER, transformations=STEPS)
    assert jwt.get_unverified_header(token) == {
        "alg": algorithm,
        "kid": key.kid,
        "typ": "JWT",
    }
    # pyjwt itself checks the signature with that algorithm and no other.
    claims = jwt.decode(token, key.secret, algorithms=[algorithm])
    assert claims["transformations"] == STEPS
    keys = InMemoryKeyStore({ISSUER: Issuer(id=ISSUER, name="i", keys=(key,))})
    assert verify(token, keys).kid == key.kid


@ALGORITHMS
def test_a_token_without_kid_has_only_alg_and_typ(algorithm: str) -> None:
    key = key_for(algorithm)
    token = mint(key, issuer_id=ISSUER, transformations=[], include_kid=False)
    assert jwt.get_unverified_header(token) == {"alg": algorithm, "typ": "JWT"}
    keys = InMemoryKeyStore({ISSUER: Issuer(id=ISSUER, name="i", keys=(key,))})
    assert verify(token, keys).kid == key.kid


def test_the_claims_are_exactly_those_asked_for() -> None:
    token = mint(
        NEW,
        issuer_id=ISSUER,
        transformations=STEPS,
        ttl=60.9,
        subject="img",
        audience="gw",
        now=1_700_000_000.7,
    )
    claims = jwt.decode(
        token, NEW.secret, algorithms=["HS256"], options={"verify_signature": False}
    )
    jti = claims.pop("jti")
    assert claims == {
        "iss": ISSUER,
        "iat": 1_700_000_000,
        "exp": 1_700_000_060,
        "sub": "img",
        "aud": "gw",
        "transformations": STEPS,
    }
    assert isinstance(jti, str)
    assert len(jti) == 16  # 12 random bytes, base64url


def test_without_options_a_token_has_no_exp_sub_or_aud() -> None:
    before = int(time.time())
    token = mint(NEW, issuer_id=ISSUER, transformations=[])
    claims = jwt.decode(
        token, NEW.secret, algorithms=["HS256"], options={"verify_signature": False}
    )
    assert set(claims) == {"iss", "iat", "jti", "transformations"}
    assert before <= claims["iat"] <= int(time.time())


def test_the_expiry_counts_from_now_given() -> None:
    now = time.time()
    token = mint(NEW, issuer_id=ISSUER, transformations=[], ttl=120, now=now)
    keys = InMemoryKeyStore({ISSUER: Issuer(id=ISSUER, name="i", keys=(NEW,))})
    assert verify(token, keys).expires_at == int(now) + 120


def test_a_zero_ttl_still_sets_exp() -> None:
    token = mint(NEW, issuer_id=ISSUER, transformations=[], ttl=0, now=1000)
    claims = jwt.decode(
        token, NEW.secret, algorithms=["HS256"], options={"verify_signature": False}
    )
    assert claims["exp"] == 1000


def test_a_verify_only_key_names_itself_when_refusing_to_mint() -> None:
    key = IssuerKey(kid="old-1", secret="L" * 43, algorithm="HS512", verify_only=True)
    with pytest.raises(
        ValueError,
        match=exactly("key 'old-1' may only verify tokens; mint with a newer key"),
    ):
        mint(key, issuer_id=ISSUER, transformations=[])


def test_a_secrets_key_checks_run_once_for_many_mints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pyjwt's HMAC key checks were 60% of a mint (a /v1 page signs 200 links)."""
    checked: list[str | bytes] = []
    check = jwt.algorithms.HMACAlgorithm.prepare_key

    def counted(self: jwt.algorithms.HMACAlgorithm, key: str | bytes) -> bytes:
        checked.append(key)
        return check(self, key)

    monkeypatch.setattr(jwt.algorithms.HMACAlgorithm, "prepare_key", counted)
    key = key_for("HS256")
    tokens = [mint(key, issuer_id=ISSUER, transformations=STEPS) for _ in range(3)]
    assert checked == [key.secret]
    store = InMemoryKeyStore({ISSUER: Issuer(id=ISSUER, name="i", keys=(key,))})
    for token in tokens:
        assert verify(token, store).kid == key.kid
