"""Token verification: every refusal, key rotation and issuer policy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Final, TypeAlias

import jwt
import pytest
from jwt.algorithms import HMACAlgorithm, get_default_algorithms

from signing import (
    AlgorithmNotAllowedError,
    ExpiredTokenError,
    ImmatureTokenError,
    InMemoryKeyStore,
    InvalidClaimError,
    InvalidSignatureError,
    Issuer,
    IssuerKey,
    IssuerPolicy,
    LifetimeExceededError,
    MalformedTokenError,
    MissingClaimError,
    MissingTokenError,
    SigningError,
    TokenTooLargeError,
    TokenVerifier,
    UnknownIssuerError,
    UnknownKeyError,
    VerifiedToken,
    WrongSubjectError,
    forget_minting_secrets,
    mint,
    mint_access_token,
    minting_remembers,
    verify,
)
from tests.helpers import exactly

ISSUER = "6b6fdb7b-65cb-4acf-97b9-d25eff795348"
OLD = IssuerKey(kid="2025", secret="a" * 40)
NEW = IssuerKey(kid="2026", secret="b" * 40)
STRANGER = IssuerKey(kid="2026", secret="c" * 40)
STEPS = [{"crop": "fit", "width": 800}]


def store(policy: IssuerPolicy = IssuerPolicy(), *keys: IssuerKey) -> InMemoryKeyStore:
    return InMemoryKeyStore(
        {ISSUER: Issuer(id=ISSUER, name="t", keys=keys or (NEW, OLD), policy=policy)}
    )


def _part(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw(claims: dict[str, object], key: str = NEW.secret, **headers: object) -> str:
    """Signs any JSON, as a hostile client would (pyjwt refuses to make some of these)."""
    return raw_text(json.dumps(claims), key, **headers)


def raw_text(payload: str, key: str = NEW.secret, **headers: object) -> str:
    """Signs any payload text, even what `json.dumps` cannot write (5000 digits)."""
    head = _part(json.dumps({"alg": "HS256", "typ": "JWT", **headers}).encode())
    body = _part(payload.encode())
    mac = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256)
    return f"{head}.{body}.{_part(mac.digest())}"


def unsigned(claims: dict[str, object]) -> str:
    head = _part(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{_part(json.dumps(claims).encode())}."


def test_minted_token_verifies_with_its_claims() -> None:
    now = time.time()
    token = mint(
        NEW, issuer_id=ISSUER, transformations=STEPS, ttl=60, subject="img", now=now
    )
    verified = verify(token, store())
    assert (verified.issuer, verified.kid, verified.subject) == (ISSUER, "2026", "img")
    assert verified.transformations == STEPS
    assert verified.expires_at == int(now) + 60
    assert (
        verified.token_id
        == jwt.decode(token, options={"verify_signature": False})["jti"]
    )


def test_seed_style_token_without_exp_or_kid_verifies() -> None:
    token = raw({"iss": ISSUER, "transformations": STEPS})
    assert verify(token, store()).transformations == STEPS


def test_each_minted_token_is_distinct() -> None:
    first = mint(NEW, issuer_id=ISSUER, transformations=STEPS)
    assert first != mint(NEW, issuer_id=ISSUER, transformations=STEPS)


@pytest.mark.parametrize(
    ("token", "error"),
    [
        pytest.param(None, MissingTokenError, id="missing"),
        pytest.param("", MissingTokenError, id="empty"),
        pytest.param("not-a-jwt", MalformedTokenError, id="not-a-jwt"),
        pytest.param("a.b.c", MalformedTokenError, id="garbage-segments"),
        pytest.param("x" * 4097, TokenTooLargeError, id="over-4-KiB"),
        pytest.param("é" * 10, MalformedTokenError, id="non-ascii"),
        pytest.param("\ud800" * 10, MalformedTokenError, id="lone-surrogates"),
        pytest.param("é" * 4097, TokenTooLargeError, id="non-ascii-over-4-KiB"),
        pytest.param("\ud800" * 4097, TokenTooLargeError, id="surrogates-over-4-KiB"),
        pytest.param(
            unsigned({"iss": ISSUER, "transformations": STEPS}),
            AlgorithmNotAllowedError,
            id="alg-none",
        ),
        pytest.param(
            jwt.encode({"iss": ISSUER}, "k" * 64, algorithm="HS512"),
            AlgorithmNotAllowedError,
            id="algorithm-the-key-is-not-for",
        ),
        pytest.param(
            raw({"iss": ISSUER}, key=STRANGER.secret),
            InvalidSignatureError,
            id="wrong-key",
        ),
        pytest.param(
            raw({"iss": ISSUER}, key=STRANGER.secret, kid="2026"),
            InvalidSignatureError,
            id="wrong-key-with-kid",
        ),
        pytest.param(raw({"transformations": STEPS}), MissingClaimError, id="no-iss"),
        pytest.param(raw({"iss": 42}), InvalidClaimError, id="iss-not-a-string"),
        pytest.param(
            raw({"iss": "3f0c1a55-0000-4000-8000-000000000000"}),
            UnknownIssuerError,
            id="unknown-issuer",
        ),
        pytest.param(
            raw({"iss": ISSUER}, kid="1999"), UnknownKeyError, id="unknown-kid"
        ),
        pytest.param(
            raw({"iss": ISSUER}, kid=7), MalformedTokenError, id="kid-not-a-string"
        ),
        pytest.param(
            raw({"iss": ISSUER}, kid=None), MalformedTokenError, id="kid-null"
        ),
        pytest.param(
            raw({"iss": ISSUER}, alg=["HS256"]), MalformedTokenError, id="alg-a-list"
        ),
        pytest.param(
            raw({"iss": ISSUER}, crit=["x"], x=1),
            MalformedTokenError,
            id="unsupported-critical-extension",
        ),
        pytest.param(
            raw({"iss": ISSUER}, crit="b64"), MalformedTokenError, id="crit-not-a-list"
        ),
        pytest.param(
            raw({"iss": ISSUER}, b64=False),
            MalformedTokenError,
            id="unencoded-payload-not-declared-critical",
        ),
        pytest.param(
            raw({"iss": ISSUER}, b64=False, crit=["b64"]),
            MalformedTokenError,
            id="unencoded-payload",
        ),
        pytest.param(
            raw({"iss": ISSUER}, alg={}), MalformedTokenError, id="alg-an-object"
        ),
        pytest.param(
            raw({"iss": ISSUER}, alg=256), MalformedTokenError, id="alg-a-number"
        ),
        pytest.param(
            raw({"iss": ISSUER, "exp": int(time.time()) - 3600}),
            ExpiredTokenError,
            id="expired",
        ),
        pytest.param(
            raw({"iss": ISSUER, "nbf": int(time.time()) + 3600}),
            ImmatureTokenError,
            id="not-yet-valid",
        ),
        pytest.param(
            raw({"iss": ISSUER, "iat": int(time.time()) + 3600}),
            ImmatureTokenError,
            id="issued-in-the-future",
        ),
        pytest.param(
            raw({"iss": ISSUER, "sub": 5}), InvalidClaimError, id="sub-not-str"
        ),
    ],
)
def test_bad_token_is_refused(token: str | None, error: type[SigningError]) -> None:
    with pytest.raises(error) as caught:
        verify(token, store())
    assert type(caught.value) is error
    assert caught.value.parameter == "token"


def test_leeway_accepts_a_token_just_expired() -> None:
    expired = int(time.time()) - 10
    token = raw({"iss": ISSUER, "exp": expired})
    assert verify(token, store(), leeway=30).expires_at == expired
    with pytest.raises(ExpiredTokenError):
        verify(token, store(), leeway=0)


def test_kid_selects_the_key_during_rotation() -> None:
    old = mint(OLD, issuer_id=ISSUER, transformations=STEPS)
    new = mint(NEW, issuer_id=ISSUER, transformations=STEPS)
    assert verify(old, store()).kid == "2025"
    assert verify(new, store()).kid == "2026"


def test_token_without_kid_is_tried_against_every_key() -> None:
    token = raw({"iss": ISSUER}, key=OLD.secret)
    assert verify(token, store()).kid == "2025"


def test_token_of_a_removed_key_is_refused() -> None:
    token = mint(OLD, issuer_id=ISSUER, transformations=STEPS)
    with pytest.raises(UnknownKeyError):
        verify(token, store(IssuerPolicy(), NEW))


def test_policy_can_require_exp() -> None:
    policy = IssuerPolicy(require_exp=True)
    with pytest.raises(MissingClaimError, match="exp"):
        verify(mint(NEW, issuer_id=ISSUER, transformations=[]), store(policy))
    now = time.time()
    with_exp = mint(NEW, issuer_id=ISSUER, transformations=[], ttl=60, now=now)
    assert verify(with_exp, store(policy)).expires_at == int(now) + 60


def test_policy_caps_the_lifetime() -> None:
    policy = IssuerPolicy(require_exp=True, max_lifetime=300)
    now = time.time()
    at_cap = mint(NEW, issuer_id=ISSUER, transformations=[], ttl=300, now=now)
    assert verify(at_cap, store(policy)).expires_at == int(now) + 300
    with pytest.raises(LifetimeExceededError):
        verify(mint(NEW, issuer_id=ISSUER, transformations=[], ttl=3600), store(policy))


def test_audience_is_required_when_configured() -> None:
    without = mint(NEW, issuer_id=ISSUER, transformations=[])
    with pytest.raises(MissingClaimError):
        verify(without, store(), audience="gw")
    right = mint(NEW, issuer_id=ISSUER, transformations=[], audience="gw")
    assert verify(right, store(), audience="gw").issuer == ISSUER
    wrong = mint(NEW, issuer_id=ISSUER, transformations=[], audience="other")
    with pytest.raises(InvalidClaimError):
        verify(wrong, store(), audience="gw")


def test_subject_binds_the_token_to_one_image() -> None:
    verified = verify(
        mint(NEW, issuer_id=ISSUER, transformations=[], subject="a"), store()
    )
    verified.ensure_subject("a")
    with pytest.raises(
        WrongSubjectError,
        match=exactly("the token's subject is another image than the one requested"),
    ):
        verified.ensure_subject("b")
    verify(mint(NEW, issuer_id=ISSUER, transformations=[]), store()).ensure_subject("b")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"kid": "k", "secret": "short"}, "32 bytes", id="short-secret"),
        pytest.param(
            {"kid": "k", "secret": "s" * 40, "algorithm": "none"},
            "not allowed",
            id="alg-none",
        ),
        pytest.param(
            {"kid": "k", "secret": "s" * 40, "algorithm": "RS256"},
            "not allowed",
            id="asymmetric",
        ),
        pytest.param({"kid": "", "secret": "s" * 40}, "kid", id="empty-kid"),
    ],
)
def test_weak_or_foreign_keys_cannot_be_made(
    kwargs: dict[str, str], message: str
) -> None:
    algorithm = kwargs.get("algorithm", "HS256")
    with pytest.raises(ValueError, match=message):
        IssuerKey(kid=kwargs["kid"], secret=kwargs["secret"], algorithm=algorithm)


def test_secret_is_not_in_repr() -> None:
    assert NEW.secret not in repr(NEW)


def test_mint_without_kid_names_no_key() -> None:
    token = mint(NEW, issuer_id=ISSUER, transformations=[], include_kid=False)
    assert "kid" not in jwt.get_unverified_header(token)
    assert verify(token, store()).kid == "2026"


# A `kid` one issuer owns names the key without a look at the unverified `iss`.

OTHER_ISSUER = "0b5e3f2c-7a41-4c11-9a0e-2f6d2b1c8e77"
OTHER = IssuerKey(kid="other-2026", secret="d" * 40)


class CountingStore(InMemoryKeyStore):
    """Counts lookups by issuer id: the full path's, which the `kid` path skips."""

    def __init__(self, *issuers: Issuer) -> None:
        super().__init__({i.id: i for i in issuers})
        self.by_id = 0

    def issuer(self, issuer_id: str, /) -> Issuer | None:
        self.by_id += 1
        return super().issuer(issuer_id)


def two_issuers(*other_keys: IssuerKey) -> CountingStore:
    return CountingStore(
        Issuer(id=ISSUER, name="t", keys=(NEW, OLD)),
        Issuer(id=OTHER_ISSUER, name="o", keys=other_keys or (OTHER,)),
    )


def test_a_kid_owned_by_one_issuer_selects_issuer_and_key_directly() -> None:
    keys = two_issuers()
    verified = verify(mint(OLD, issuer_id=ISSUER, transformations=STEPS), keys)
    assert (verified.issuer, verified.kid, keys.by_id) == (ISSUER, "2025", 0)


def test_a_kid_shared_by_two_issuers_falls_back_to_iss() -> None:
    keys = two_issuers(STRANGER)  # the other issuer also has a kid "2026"
    ours = verify(mint(NEW, issuer_id=ISSUER, transformations=STEPS), keys)
    theirs = verify(mint(STRANGER, issuer_id=OTHER_ISSUER, transformations=[]), keys)
    assert (ours.issuer, theirs.issuer, keys.by_id) == (ISSUER, OTHER_ISSUER, 2)


@pytest.mark.parametrize(
    ("token", "error"),
    [
        pytest.param(
            # Signed with the kid's own key, claiming the other issuer: refused,
            # with the error the full path gives (that issuer has no such kid).
            raw({"iss": OTHER_ISSUER}, key=NEW.secret, kid="2026"),
            UnknownKeyError,
            id="kid-of-one-issuer-iss-of-another",
        ),
        pytest.param(
            raw({"iss": "f" * 36}, key=NEW.secret, kid="2026"),
            UnknownIssuerError,
            id="kid-known-iss-unknown",
        ),
        pytest.param(
            raw({"jti": "x"}, key=NEW.secret, kid="2026"),
            MissingClaimError,
            id="kid-known-no-iss",
        ),
        pytest.param(
            raw({"iss": ISSUER}, key=OTHER.secret, kid="2026"),
            InvalidSignatureError,
            id="kid-known-wrong-key",
        ),
        pytest.param(
            raw({"iss": ISSUER, "exp": 1}, key=NEW.secret, kid="2026"),
            ExpiredTokenError,
            id="kid-known-expired",
        ),
        pytest.param(
            raw({"iss": ISSUER}, key=NEW.secret, kid="2026", alg="HS512"),
            AlgorithmNotAllowedError,
            id="kid-known-other-algorithm",
        ),
    ],
)
def test_kid_path_refusals(token: str, error: type[SigningError]) -> None:
    with pytest.raises(error):
        verify(token, two_issuers())


def test_a_malformed_header_is_refused_every_time() -> None:
    # Headers are remembered once parsed; a failed parse must not be.
    for _ in range(2):
        with pytest.raises(MalformedTokenError):
            verify("bm90LWpzb24.e30.sig", store())  # "not-json"


# pyjwt is shared with every other user in the process: we leave its globals as
# they are, and remember key checks only inside our own verifiers.

PEM_SECRET = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"


def test_pyjwt_global_algorithms_are_pyjwts_own() -> None:
    TokenVerifier(store()).verify(mint(NEW, issuer_id=ISSUER, transformations=[]))
    defaults = get_default_algorithms()
    assert set(jwt.api_jws._jws_global_obj.get_algorithms()) == set(defaults)
    for name in ("HS256", "HS384", "HS512"):
        assert type(jwt.get_algorithm_by_name(name)) is HMACAlgorithm
    assert jwt.api_jwt._jwt_global_obj._jws is jwt.api_jws._jws_global_obj


def test_verifier_remembers_each_key_check_once() -> None:
    verifier = TokenVerifier(store())
    for _ in range(3):
        verifier.verify(mint(NEW, issuer_id=ISSUER, transformations=STEPS))
    assert verifier.remembers(NEW)
    assert not verifier.remembers(OLD)


def test_a_forgotten_key_is_no_longer_remembered() -> None:
    verifier = TokenVerifier(store())
    verifier.verify(mint(NEW, issuer_id=ISSUER, transformations=STEPS))
    verifier.verify(mint(OLD, issuer_id=ISSUER, transformations=STEPS))
    verifier.forget(OLD)
    assert (verifier.remembers(NEW), verifier.remembers(OLD)) == (True, False)


def test_retain_forgets_every_key_not_active() -> None:
    verifier = TokenVerifier(store())
    verifier.verify(mint(NEW, issuer_id=ISSUER, transformations=STEPS))
    verifier.verify(mint(OLD, issuer_id=ISSUER, transformations=STEPS))
    verifier.retain([NEW])
    assert (verifier.remembers(NEW), verifier.remembers(OLD)) == (True, False)


def test_two_verifiers_do_not_share_what_they_remember() -> None:
    first, second = TokenVerifier(store()), TokenVerifier(store())
    first.verify(mint(NEW, issuer_id=ISSUER, transformations=STEPS))
    assert (first.remembers(NEW), second.remembers(NEW)) == (True, False)


def test_minting_remembers_its_secrets_until_told_to_forget_them() -> None:
    """Both kinds of token; the gateway forgets on every catalog change, so a
    revoked secret does not stay in memory."""
    forget_minting_secrets()
    mint(NEW, issuer_id=ISSUER, transformations=[])
    mint_access_token(OLD, issuer_id=ISSUER, subject="u", scopes=(), ttl=60)
    assert (minting_remembers(NEW.secret), minting_remembers(OLD.secret)) == (
        True,
        True,
    )
    forget_minting_secrets()
    assert (minting_remembers(NEW.secret), minting_remembers(OLD.secret)) == (
        False,
        False,
    )
    mint(NEW, issuer_id=ISSUER, transformations=[])
    assert minting_remembers(NEW.secret)


def test_the_memo_is_bounded() -> None:
    keys = [IssuerKey(kid=f"k{i}", secret=f"{i:02}" * 20) for i in range(3)]
    verifier = TokenVerifier(store(IssuerPolicy(), *keys), memo_size=2)
    for key in keys:
        verifier.verify(mint(key, issuer_id=ISSUER, transformations=[]))
    assert [verifier.remembers(k) for k in keys] == [False, True, True]


def test_verifier_applies_its_limits() -> None:
    verifier = TokenVerifier(store(), leeway=0, audience="gw", max_bytes=1000)
    with pytest.raises(TokenTooLargeError):
        verifier.verify("x" * 1001)
    with pytest.raises(MissingClaimError, match="aud"):
        verifier.verify(mint(NEW, issuer_id=ISSUER, transformations=[]))
    token = mint(NEW, issuer_id=ISSUER, transformations=[], audience="gw", ttl=-10)
    with pytest.raises(ExpiredTokenError):
        verifier.verify(token)


def test_a_pem_secret_is_refused_every_time() -> None:
    """pyjwt's algorithm-confusion check still runs; a refusal is never remembered."""
    pem = IssuerKey(kid="pem", secret=PEM_SECRET)
    token = raw({"iss": ISSUER}, key=PEM_SECRET, kid="pem")
    verifier = TokenVerifier(store(IssuerPolicy(), pem))
    for _ in range(2):
        with pytest.raises(SigningError):
            verifier.verify(token)
        with pytest.raises(SigningError):
            verify(token, store(IssuerPolicy(), pem))
    assert not verifier.remembers(pem)


# Time claims are NumericDates (RFC 7519 §2): JSON numbers of seconds since 1970.
# pyjwt would take `int()` of anything, numeric strings and booleans included.
# Each is refused on both paths (a `kid` one issuer owns, or `iss` peeked) and
# by both entry points; tokens here may be larger than the gateway allows.

Check: TypeAlias = Callable[[str], VerifiedToken]
LARGE: Final = 1 << 20


@pytest.fixture(
    params=[
        pytest.param({"kid": NEW.kid}, id="kid-path"),
        pytest.param({}, id="iss-path"),
    ]
)
def headers(request: pytest.FixtureRequest) -> dict[str, str]:
    found: dict[str, str] = request.param
    return found


@pytest.fixture(params=["verify", "TokenVerifier"])
def check(request: pytest.FixtureRequest) -> Check:
    if request.param == "verify":
        return lambda token: verify(token, store(), max_bytes=LARGE)
    return TokenVerifier(store(), max_bytes=LARGE).verify


TIME_CLAIMS = pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])


@TIME_CLAIMS
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("9999999999", id="numeric-string"),
        pytest.param("soon", id="word"),
        pytest.param(True, id="true"),
        pytest.param(False, id="false"),
        pytest.param(None, id="null"),
        pytest.param({"seconds": 1}, id="object"),
        pytest.param([1], id="array"),
    ],
)
def test_time_claim_that_is_not_a_number_is_an_invalid_claim(
    check: Check, headers: dict[str, str], claim: str, value: object
) -> None:
    token = raw({"iss": ISSUER, claim: value}, **headers)
    with pytest.raises(
        InvalidClaimError, match=exactly(f"the '{claim}' claim must be a number")
    ):
        check(token)


@TIME_CLAIMS
@pytest.mark.parametrize(
    "number",
    [
        pytest.param("NaN", id="nan"),
        pytest.param("Infinity", id="infinity"),
        pytest.param("-Infinity", id="minus-infinity"),
        pytest.param("1e400", id="float-overflowing-to-infinity"),
        pytest.param("1e300", id="huge-float"),
        pytest.param(str(10**400), id="401-digit-int"),
        pytest.param(str(-(10**400)), id="minus-401-digit-int"),
        pytest.param("253402300800", id="year-10000"),
        pytest.param("-62135596801", id="before-year-1"),
    ],
)
def test_time_claim_beyond_years_1_to_9999_is_an_invalid_claim(
    check: Check, headers: dict[str, str], claim: str, number: str
) -> None:
    token = raw_text(f'{{"iss": "{ISSUER}", "{claim}": {number}}}', **headers)
    with pytest.raises(
        InvalidClaimError,
        match=exactly(
            f"the '{claim}' claim must be a date from year 1 to 9999, in seconds since 1970"
        ),
    ):
        check(token)


@TIME_CLAIMS
def test_time_claim_too_long_for_the_json_parser_is_malformed(
    check: Check, headers: dict[str, str], claim: str
) -> None:
    # Python's int parsing stops at 4300 digits (CVE-2020-10735), and so does
    # `json.loads`: the payload is not JSON we can read.
    token = raw_text(f'{{"iss": "{ISSUER}", "{claim}": {"9" * 5000}}}', **headers)
    with pytest.raises(MalformedTokenError):
        check(token)


def test_time_claims_at_the_ends_of_years_1_to_9999_verify(
    check: Check, headers: dict[str, str]
) -> None:
    first, last = (
        -62135596800,
        253402300799,
    )  # 0001-01-01T00:00:00Z, 9999-12-31T23:59:59Z
    token = raw({"iss": ISSUER, "exp": last, "nbf": first, "iat": first}, **headers)
    assert check(token).expires_at == last


def test_a_fractional_time_claim_is_a_number(
    check: Check, headers: dict[str, str]
) -> None:
    now = time.time()
    token = raw({"iss": ISSUER, "exp": now + 60.5, "iat": now - 0.25}, **headers)
    assert check(token).expires_at == now + 60.5


# `json.loads` raises RecursionError on deep nesting; both our reads of the
# unverified segments and pyjwt's of the verified payload must call it malformed.

DEEP: Final = 100_000
NESTED = pytest.mark.parametrize(
    "nested",
    [
        pytest.param("[" * DEEP + "]" * DEEP, id="arrays"),
        pytest.param('{"a":' * DEEP + "1" + "}" * DEEP, id="objects"),
    ],
)


@NESTED
def test_deeply_nested_header_is_malformed(check: Check, nested: str) -> None:
    token = f"{_part(nested.encode())}.{_part(b'{}')}.{_part(b'sig')}"
    with pytest.raises(MalformedTokenError):
        check(token)


@NESTED
def test_deeply_nested_payload_is_malformed(
    check: Check, headers: dict[str, str], nested: str
) -> None:
    token = raw_text(f'{{"iss": "{ISSUER}", "transformations": {nested}}}', **headers)
    assert len(token) < LARGE
    with pytest.raises(MalformedTokenError):
        check(token)


def test_deeply_nested_payload_without_an_object_is_malformed(
    check: Check, headers: dict[str, str]
) -> None:
    with pytest.raises(MalformedTokenError):
        check(raw_text("[" * DEEP + "]" * DEEP, **headers))


def test_forgetting_a_key_never_remembered_is_harmless() -> None:
    verifier = TokenVerifier(store())
    verifier.forget(OLD)
    verifier.retain([])
    assert not verifier.remembers(OLD)
    assert (
        verifier.verify(mint(OLD, issuer_id=ISSUER, transformations=[])).kid == "2025"
    )


def test_a_memo_needs_room_for_one_key() -> None:
    with pytest.raises(
        ValueError, match=exactly("the memo needs room for at least one key")
    ):
        TokenVerifier(store(), memo_size=0)
    verifier = TokenVerifier(store(), memo_size=1)
    verifier.verify(mint(OLD, issuer_id=ISSUER, transformations=[]))
    verifier.verify(mint(NEW, issuer_id=ISSUER, transformations=[]))
    assert (verifier.remembers(NEW), verifier.remembers(OLD)) == (True, False)


# The detail of each refusal, shown to the client: exactly these words.

ALLOWED = "HS256, HS384, HS512"


def _header_only(header: str) -> str:
    return f"{_part(header.encode())}.e30.{_part(b'sig')}"


@pytest.mark.parametrize(
    ("token", "error", "detail"),
    [
        pytest.param(None, MissingTokenError, "a token is required", id="missing"),
        pytest.param(
            "é" * 10,
            MalformedTokenError,
            "the token may contain only ASCII characters",
            id="not-ascii",
        ),
        pytest.param(
            "not-a-jwt",
            MalformedTokenError,
            "the token is not a well-formed JWT",
            id="header-not-json",
        ),
        pytest.param(
            _header_only("[]"),
            MalformedTokenError,
            "the token's header must be a JSON object",
            id="header-a-list",
        ),
        pytest.param(
            raw({"iss": ISSUER}, alg=["HS256"]),
            MalformedTokenError,
            "the token's 'alg' must be a string",
            id="alg-a-list",
        ),
        pytest.param(
            raw({"iss": ISSUER}, kid=7),
            MalformedTokenError,
            "the token's 'kid' must be a string",
            id="kid-a-number",
        ),
        pytest.param(
            unsigned({"iss": ISSUER}),
            AlgorithmNotAllowedError,
            f"algorithm 'none' is not allowed; use one of {ALLOWED}",
            id="alg-none",
        ),
        pytest.param(
            _header_only('{"typ": "JWT"}'),
            AlgorithmNotAllowedError,
            f"the token's header names no algorithm ('alg'); use one of {ALLOWED}",
            id="no-alg",
        ),
        pytest.param(
            jwt.encode({"iss": ISSUER}, "k" * 64, algorithm="HS512"),
            AlgorithmNotAllowedError,
            "algorithm 'HS512' is not the algorithm of the issuer's key",
            id="algorithm-of-no-key",
        ),
        pytest.param(
            raw({"iss": ISSUER}, key=STRANGER.secret),
            InvalidSignatureError,
            "the token's signature does not match its issuer's key",
            id="wrong-key",
        ),
        pytest.param(
            raw({"sub": "x"}),
            MissingClaimError,
            "the token has no 'iss' claim",
            id="no-iss",
        ),
        pytest.param(
            raw({"iss": 42}),
            InvalidClaimError,
            "the 'iss' claim must be a string",
            id="iss-a-number",
        ),
        pytest.param(
            raw({"iss": "3f0c1a55-0000-4000-8000-000000000000"}),
            UnknownIssuerError,
            "the token's issuer is not known",
            id="unknown-issuer",
        ),
        pytest.param(
            raw({"iss": ISSUER}, kid="1999"),
            UnknownKeyError,
            "the token's 'kid' names no key of its issuer",
            id="unknown-kid",
        ),
        pytest.param(
            raw({"iss": ISSUER}).rpartition(".")[0],
            MalformedTokenError,
            "the token is not a well-formed JWT",
            id="two-segments",
        ),
        pytest.param(
            raw({"iss": ISSUER}) + ".x",
            MalformedTokenError,
            "the token is not a well-formed JWT",
            id="four-segments",
        ),
        pytest.param(
            raw({"iss": ISSUER}, kid=NEW.kid).rpartition(".")[0] + ".%%%",
            MalformedTokenError,
            "the token is not a well-formed JWT",
            id="kid-path-signature-not-base64",
        ),
        pytest.param(
            raw_text("[1]"),
            MalformedTokenError,
            "the token's payload must be a JSON object",
            id="payload-a-list",
        ),
        pytest.param(
            raw({"iss": ISSUER, "exp": 1}),
            ExpiredTokenError,
            "the token has expired",
            id="expired",
        ),
        pytest.param(
            raw({"iss": ISSUER, "nbf": int(time.time()) + 3600}, kid=NEW.kid),
            ImmatureTokenError,
            "the token is not valid yet",
            id="not-yet-valid",
        ),
        pytest.param(
            raw({"iss": ISSUER}, crit=["x"], x=1),
            MalformedTokenError,
            "the token's 'crit' or 'b64' header is not supported",
            id="crit",
        ),
    ],
)
def test_each_refusal_says_what_is_wrong(
    token: str | None, error: type[SigningError], detail: str
) -> None:
    checks: list[Callable[[str | None], VerifiedToken]] = [
        lambda t: verify(t, store()),
        TokenVerifier(store()).verify,
    ]
    for check in checks:
        with pytest.raises(error, match=exactly(detail)) as caught:
            check(token)
        assert type(caught.value) is error
        assert caught.value.detail == detail


def test_a_secret_pyjwt_refuses_is_an_invalid_token() -> None:
    pem = IssuerKey(kid="pem", secret=PEM_SECRET)
    token = raw({"iss": ISSUER}, key=PEM_SECRET)
    with pytest.raises(SigningError, match=exactly("the token is invalid")) as caught:
        verify(token, store(IssuerPolicy(), pem))
    assert type(caught.value) is SigningError


def test_a_verifier_has_the_defaults_of_verify() -> None:
    verifier = TokenVerifier(store())
    now = int(time.time())
    assert verifier.verify(raw({"iss": ISSUER, "exp": now - 20})).expires_at == now - 20
    with pytest.raises(ExpiredTokenError):
        verifier.verify(raw({"iss": ISSUER, "exp": now - 40}))
    with pytest.raises(InvalidClaimError):
        verifier.verify(raw({"iss": ISSUER, "aud": "any"}))
    with pytest.raises(TokenTooLargeError):
        verifier.verify("x" * 4097)


def test_a_verifier_remembers_256_keys_by_default() -> None:
    keys = [IssuerKey(kid=f"k{i}", secret=f"{i:03}" * 11) for i in range(257)]
    verifier = TokenVerifier(store(IssuerPolicy(), *keys))
    for key in keys:
        verifier.verify(mint(key, issuer_id=ISSUER, transformations=[]))
    assert not verifier.remembers(keys[0])
    assert all(verifier.remembers(k) for k in keys[1:])


def test_a_verifier_checks_each_secret_with_pyjwt_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[str | bytes] = []
    prepare = HMACAlgorithm.prepare_key

    def counting(self: HMACAlgorithm, key: str | bytes) -> bytes:
        checked.append(key)
        return prepare(self, key)

    tokens = [mint(NEW, issuer_id=ISSUER, transformations=[]) for _ in range(3)]
    monkeypatch.setattr(HMACAlgorithm, "prepare_key", counting)
    verifier = TokenVerifier(store())
    for token in tokens:
        assert verifier.verify(token).kid == NEW.kid
    assert checked == [NEW.secret]
    for token in tokens[:2]:
        verify(token, store())
    assert checked == [NEW.secret] * 3  # `verify` remembers nothing


def test_a_kid_for_a_key_of_another_algorithm_names_the_algorithm() -> None:
    token = raw({"iss": ISSUER}, key=NEW.secret, kid="2026", alg="HS512")
    with pytest.raises(
        AlgorithmNotAllowedError,
        match=exactly("algorithm 'HS512' is not the algorithm of the issuer's key"),
    ):
        verify(token, two_issuers())


def test_a_claim_missing_on_the_kid_path_is_refused_there() -> None:
    keys = CountingStore(
        Issuer(id=ISSUER, name="t", keys=(NEW,), policy=IssuerPolicy(require_exp=True))
    )
    with pytest.raises(
        MissingClaimError, match=exactly("the token has no 'exp' claim")
    ):
        verify(raw({"iss": ISSUER}, kid=NEW.kid), keys)
    assert keys.by_id == 0
