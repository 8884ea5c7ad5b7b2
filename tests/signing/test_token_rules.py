"""Every verification rule, on both paths a token can take.

A token whose `kid` one issuer owns is verified directly with that key; any
other token (the seed's carry no `kid`) goes by its unverified `iss` and is
tried against the issuer's keys. Each rule here runs on both paths, through
both entry points (`verify` and a `TokenVerifier`), at its exact edges.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import pytest

from signing import (
    DEFAULT_LEEWAY,
    MAX_TOKEN_BYTES,
    ExpiredTokenError,
    ImmatureTokenError,
    InvalidClaimError,
    InvalidSignatureError,
    Issuer,
    IssuerKey,
    IssuerPolicy,
    KeyStore,
    LifetimeExceededError,
    MissingClaimError,
    TokenTooLargeError,
    TokenVerifier,
    VerifiedToken,
    verify,
)
from tests.helpers import exactly
from tests.signing.test_tokens import (
    ISSUER,
    NEW,
    OLD,
    STEPS,
    CountingStore,
    raw,
    store,
)


class Check(Protocol):
    def __call__(
        self,
        token: str,
        keys: KeyStore,
        *,
        leeway: float = ...,
        audience: str | None = ...,
        max_bytes: int = ...,
        now: float | None = ...,
    ) -> VerifiedToken: ...


def _with_verifier(
    token: str,
    keys: KeyStore,
    *,
    leeway: float = DEFAULT_LEEWAY,
    audience: str | None = None,
    max_bytes: int = MAX_TOKEN_BYTES,
    now: float | None = None,
) -> VerifiedToken:
    verifier = TokenVerifier(
        keys, leeway=leeway, audience=audience, max_bytes=max_bytes
    )
    return verifier.verify(token, now=now)


@pytest.fixture
def now() -> int:
    """The clock when the test starts: tokens near an edge must be made fresh."""
    return int(time.time())


@pytest.fixture(params=["verify", "TokenVerifier"])
def check(request: pytest.FixtureRequest) -> Check:
    return verify if request.param == "verify" else _with_verifier


Sign = Callable[..., str]


@pytest.fixture(params=["kid-path", "iss-path"])
def path(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def sign(path: str) -> Sign:
    """Signs claims with NEW, its `kid` in the header or not."""
    headers = {"kid": NEW.kid} if path == "kid-path" else {}

    def signed(**claims: object) -> str:
        return raw({"iss": ISSUER, **claims}, **headers)

    return signed


def test_each_path_is_the_one_named(check: Check, path: str, sign: Sign) -> None:
    # Only the full path looks the issuer up by the unverified `iss`.
    keys = CountingStore(Issuer(id=ISSUER, name="t", keys=(NEW, OLD)))
    assert check(sign(), keys).kid == NEW.kid
    assert keys.by_id == (0 if path == "kid-path" else 1)


# Claims pyjwt returns, as the verified token carries them.


def test_a_verified_token_carries_its_claims(
    now: int, check: Check, sign: Sign
) -> None:
    token = sign(sub="img", exp=now + 60, jti="id-1", transformations=STEPS, iat=now)
    verified = check(token, store())
    assert verified.issuer == ISSUER
    assert verified.kid == NEW.kid
    assert verified.subject == "img"
    assert verified.expires_at == now + 60
    assert type(verified.expires_at) is float
    assert verified.token_id == "id-1"
    assert verified.transformations == STEPS


def test_a_token_without_optional_claims_has_none_of_them(
    check: Check, sign: Sign
) -> None:
    verified = check(sign(), store())
    assert (verified.subject, verified.expires_at, verified.token_id) == (
        None,
        None,
        None,
    )
    assert verified.transformations == []


@pytest.mark.parametrize(
    "jti", [pytest.param(7, id="number"), pytest.param(["x"], id="array")]
)
def test_a_jti_that_is_not_a_string_is_invalid(
    check: Check, sign: Sign, jti: object
) -> None:
    with pytest.raises(
        InvalidClaimError, match=exactly("a claim is invalid: JWT ID must be a string")
    ):
        check(sign(jti=jti), store())


@pytest.mark.parametrize(
    "sub",
    [
        pytest.param(5, id="number"),
        pytest.param(["a"], id="array"),
        pytest.param({"id": "a"}, id="object"),
        pytest.param(True, id="bool"),
    ],
)
def test_a_subject_that_is_not_a_string_is_invalid(
    check: Check, sign: Sign, sub: object
) -> None:
    with pytest.raises(
        InvalidClaimError, match=exactly("a claim is invalid: Subject must be a string")
    ):
        check(sign(sub=sub), store())


# Time claims and the leeway.


def test_an_expired_token_is_refused_and_the_leeway_forgives_its_seconds(
    now: int, check: Check, sign: Sign
) -> None:
    token = sign(exp=now - 10)
    assert check(token, store(), leeway=30).expires_at == now - 10
    with pytest.raises(ExpiredTokenError):
        check(token, store(), leeway=0)
    with pytest.raises(ExpiredTokenError):
        check(sign(exp=now - 60), store())


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_a_token_from_the_future_is_refused_and_the_leeway_forgives_its_seconds(
    now: int, check: Check, sign: Sign, claim: str
) -> None:
    token = sign(**{claim: now + 10})
    assert check(token, store(), leeway=30).issuer == ISSUER
    with pytest.raises(ImmatureTokenError):
        check(token, store(), leeway=0)
    with pytest.raises(ImmatureTokenError):
        check(sign(**{claim: now + 3600}), store())


def test_the_default_leeway_is_thirty_seconds(
    now: int, check: Check, sign: Sign
) -> None:
    assert DEFAULT_LEEWAY == 30.0
    assert check(sign(exp=now - 20), store()).expires_at == now - 20
    with pytest.raises(ExpiredTokenError):
        check(sign(exp=now - 40), store())


# Issuer policy: `exp` required, lifetime capped.


def test_a_policy_requiring_exp_refuses_a_token_without(
    now: int, check: Check, sign: Sign
) -> None:
    policy = IssuerPolicy(require_exp=True)
    with pytest.raises(
        MissingClaimError, match=exactly("the token has no 'exp' claim")
    ):
        check(sign(), store(policy))
    assert check(sign(exp=now + 60), store(policy)).expires_at == now + 60


def test_without_a_policy_a_token_needs_no_exp(check: Check, sign: Sign) -> None:
    assert check(sign(), store(IssuerPolicy(max_lifetime=60))).expires_at is None


@pytest.mark.parametrize(
    ("lifetime", "leeway", "accepted"),
    [
        pytest.param(300, 0, True, id="at-the-cap"),
        pytest.param(301, 0, False, id="a-second-over"),
        pytest.param(330, 30, True, id="at-the-cap-and-leeway"),
        pytest.param(331, 30, False, id="a-second-over-the-leeway"),
    ],
)
def test_the_lifetime_cap_at_its_edge(
    now: int, check: Check, sign: Sign, lifetime: int, leeway: float, accepted: bool
) -> None:
    keys = store(IssuerPolicy(max_lifetime=300))
    token = sign(iat=now, exp=now + lifetime)
    if accepted:
        assert check(token, keys, leeway=leeway).expires_at == now + lifetime
    else:
        with pytest.raises(
            LifetimeExceededError,
            match=exactly(f"the token lives {lifetime} s; the issuer allows 300 s"),
        ):
            check(token, keys, leeway=leeway)


def test_the_lifetime_counts_from_an_old_iat(
    now: int, check: Check, sign: Sign
) -> None:
    # Issued 20 minutes ago for 25 minutes: 5 minutes are left, but the token
    # was made to live 25, over the cap of 10.
    keys = store(IssuerPolicy(max_lifetime=600))
    with pytest.raises(
        LifetimeExceededError,
        match=exactly("the token lives 1500 s; the issuer allows 600 s"),
    ):
        check(sign(iat=now - 1200, exp=now + 300), keys)


def test_the_lifetime_counts_from_a_fractional_iat(
    now: int, check: Check, sign: Sign
) -> None:
    keys = store(IssuerPolicy(max_lifetime=100))
    token = sign(iat=now - 0.5, exp=now + 100)
    with pytest.raises(LifetimeExceededError):
        check(token, keys, leeway=0)


def test_without_iat_the_lifetime_counts_from_now(
    now: int, check: Check, sign: Sign
) -> None:
    keys = store(IssuerPolicy(max_lifetime=300))
    token = sign(exp=now + 400)
    with pytest.raises(
        LifetimeExceededError,
        match=exactly("the token lives 400 s; the issuer allows 300 s"),
    ):
        check(token, keys, leeway=0, now=now)
    assert check(token, keys, leeway=0, now=now + 100).expires_at == now + 400
    with pytest.raises(
        LifetimeExceededError,
        match=exactly("the token lives 301 s; the issuer allows 300 s"),
    ):
        check(token, keys, leeway=0, now=now + 99)


def test_without_iat_or_now_the_lifetime_counts_from_the_clock(
    now: int, check: Check, sign: Sign
) -> None:
    keys = store(IssuerPolicy(max_lifetime=300))
    assert check(sign(exp=now + 290), keys, leeway=0).expires_at == now + 290
    with pytest.raises(LifetimeExceededError):
        check(sign(exp=int(time.time()) + 400), keys, leeway=0)


def test_without_exp_there_is_no_lifetime_to_cap(
    now: int, check: Check, sign: Sign
) -> None:
    keys = store(IssuerPolicy(max_lifetime=1))
    assert check(sign(iat=now - 1000), keys).expires_at is None


# Audience.


def test_an_audience_configured_is_required(check: Check, sign: Sign) -> None:
    with pytest.raises(
        MissingClaimError, match=exactly("the token has no 'aud' claim")
    ):
        check(sign(), store(), audience="gw")


def test_an_audience_configured_must_match(check: Check, sign: Sign) -> None:
    assert check(sign(aud="gw"), store(), audience="gw").issuer == ISSUER
    assert check(sign(aud=["x", "gw"]), store(), audience="gw").issuer == ISSUER
    with pytest.raises(
        InvalidClaimError, match=exactly("a claim is invalid: Audience doesn't match")
    ):
        check(sign(aud="other"), store(), audience="gw")


@pytest.mark.parametrize(
    ("audience", "accepted"),
    [
        ("anyone", False),
        (["gw", "other"], False),
        ([], True),  # names none
        # Not an audience at all, which pyjwt reads as none when not asked for one.
        ("", False),
        (0, False),
        (False, False),
        ({}, False),
        (None, False),
    ],
)
def test_an_audience_claimed_but_not_configured_is_refused(
    check: Check, sign: Sign, audience: object, accepted: bool
) -> None:
    """A token for another service is not for us (RFC 7519 §4.1.3)."""
    token = sign(aud=audience)
    if accepted:
        assert check(token, store()).issuer == ISSUER
        return
    with pytest.raises(
        InvalidClaimError, match=exactly("a claim is invalid: Invalid audience")
    ):
        check(token, store())


def test_an_audience_and_required_exp_are_both_required(
    now: int, check: Check, sign: Sign
) -> None:
    keys = store(IssuerPolicy(require_exp=True))
    with pytest.raises(
        MissingClaimError, match=exactly("the token has no 'exp' claim")
    ):
        check(sign(aud="gw"), keys, audience="gw")
    with pytest.raises(
        MissingClaimError, match=exactly("the token has no 'aud' claim")
    ):
        check(sign(exp=now + 60), keys, audience="gw")


# The issuer is pinned: the key of one issuer never verifies another's token.


def test_the_wrong_secret_is_an_invalid_signature_on_both_paths(
    check: Check, sign: Sign
) -> None:
    impostor = IssuerKey(kid=NEW.kid, secret="z" * 40)
    keys = store(IssuerPolicy(), impostor, OLD)
    with pytest.raises(
        InvalidSignatureError,
        match=exactly("the token's signature does not match its issuer's key"),
    ):
        check(sign(), keys)


# The size cap: 4096 characters, counted before any decoding.


def _token_of_length(length: int) -> str:
    for n in range(length):
        token = raw({"iss": ISSUER, "pad": "p" * n})
        if len(token) == length:
            return token
    raise AssertionError(f"no token of exactly {length} characters")


def test_a_token_of_exactly_4096_characters_verifies(check: Check) -> None:
    token = _token_of_length(4096)
    assert check(token, store()).issuer == ISSUER


def test_a_token_of_4097_characters_is_too_large(check: Check) -> None:
    token = _token_of_length(4097)
    with pytest.raises(
        TokenTooLargeError,
        match=exactly("the token is 4097 characters; at most 4096 are accepted"),
    ):
        check(token, store())


def test_max_bytes_moves_the_cap(check: Check, sign: Sign) -> None:
    token = sign()
    assert check(token, store(), max_bytes=len(token)).issuer == ISSUER
    with pytest.raises(TokenTooLargeError):
        check(token, store(), max_bytes=len(token) - 1)
