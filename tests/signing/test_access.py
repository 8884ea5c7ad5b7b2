"""Access tokens: minting, every refusal, and never mistaken for a transformation token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from signing import (
    AccessTokenVerifier,
    ExpiredTokenError,
    InMemoryKeyStore,
    InvalidClaimError,
    InvalidSignatureError,
    Issuer,
    IssuerKey,
    LifetimeExceededError,
    MissingClaimError,
    SigningError,
    UnknownIssuerError,
    WrongTokenTypeError,
    mint,
    mint_access_token,
    parse_roles,
    verify,
)

ISSUER = "6b6fdb7b-65cb-4acf-97b9-d25eff795348"
KEY = IssuerKey(kid="2026", secret="b" * 40)
OLD = IssuerKey(kid="2025", secret="a" * 40)
KEYS = InMemoryKeyStore({ISSUER: Issuer(id=ISSUER, name="t", keys=(KEY, OLD))})
# pyjwt reads the clock itself: `now` moves only our own lifetime checks.
NOW = float(int(time.time()))


def _part(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw(claims: dict[str, object], *, key: IssuerKey = KEY, **headers: object) -> str:
    header = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid, **headers}
    head = _part(
        json.dumps({k: v for k, v in header.items() if v is not None}).encode()
    )
    body = _part(json.dumps(claims).encode())
    mac = hmac.new(key.secret.encode(), f"{head}.{body}".encode(), hashlib.sha256)
    return f"{head}.{body}.{_part(mac.digest())}"


def claims(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": ISSUER,
        "sub": "user-1",
        "iat": int(NOW),
        # Hours ahead: NOW is taken when the module loads, and pyjwt checks
        # `exp` against the clock when the test runs.
        "exp": int(NOW) + 6 * 3600,
        "scope": "images:read",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def verifier(**kwargs: object) -> AccessTokenVerifier:
    return AccessTokenVerifier(KEYS, **kwargs)  # type: ignore[arg-type]


def test_a_minted_token_carries_user_scopes_and_roles() -> None:
    token = mint_access_token(
        KEY,
        issuer_id=ISSUER,
        subject="alice",
        ttl=600,
        scopes=("images:read", "images:write"),
        roles=("staff", "editor"),
    )
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "kid": "2026", "typ": "at+jwt"}
    access = verifier().verify(token)
    assert access.issuer == ISSUER
    assert access.subject == "alice"
    assert access.scopes == {"images:read", "images:write"}
    assert access.roles == {"staff", "editor"}
    assert access.expires_at == pytest.approx(time.time() + 600, abs=5)
    assert access.kid == "2026"


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_every_allowed_algorithm_mints_and_verifies(algorithm: str) -> None:
    key = IssuerKey(kid=f"k-{algorithm}", secret="s" * 64, algorithm=algorithm)
    keys = InMemoryKeyStore({ISSUER: Issuer(id=ISSUER, name="t", keys=(key,))})
    token = mint_access_token(key, issuer_id=ISSUER, subject="u", ttl=60)
    assert AccessTokenVerifier(keys).verify(token).subject == "u"


@pytest.mark.parametrize(
    ("token_claims", "headers", "error"),
    [
        (claims(exp=int(NOW) - 3600), {}, ExpiredTokenError),
        (claims(exp=None), {}, MissingClaimError),
        (claims(sub=None), {}, MissingClaimError),
        (claims(iss=None), {}, MissingClaimError),
        (claims(iss="another"), {"kid": None}, UnknownIssuerError),
        (claims(sub=5), {}, InvalidClaimError),
        (claims(sub=""), {}, InvalidClaimError),
        (claims(sub="u" * 257), {}, InvalidClaimError),
        (claims(scope=["images:read"]), {}, InvalidClaimError),
        (claims(roles="staff"), {}, InvalidClaimError),
        (claims(roles=[1]), {}, InvalidClaimError),
        (claims(roles=["no spaces"]), {}, InvalidClaimError),
        (claims(roles=[f"r{i}" for i in range(65)]), {}, InvalidClaimError),
        # Lifetime: the cap counts from `iat` and from now, whichever is earlier.
        (claims(exp=int(NOW) + 86_400 + 31), {}, LifetimeExceededError),
        (claims(iat=int(NOW) - 3600, exp=int(NOW) + 86_000), {}, LifetimeExceededError),
        (claims(iat=None, exp=int(NOW) + 86_400 + 31), {}, LifetimeExceededError),
        # The kind: a transformation token's header is no access token's.
        (claims(), {"typ": "JWT"}, WrongTokenTypeError),
        (claims(), {"typ": None}, WrongTokenTypeError),
        (claims(), {"typ": "at+jwt+x"}, WrongTokenTypeError),
    ],
)
def test_refusals(
    token_claims: dict[str, object], headers: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        verifier().verify(raw(token_claims, key=KEY, **headers), now=NOW)


@pytest.mark.parametrize("kid", [KEY.kid, None])
def test_the_lifetime_cap_is_exact_at_its_edge(kid: str | None) -> None:
    # With and without `kid`: the two ways keys are found run the same rules.
    edge = claims(exp=int(NOW) + 3600 + 30)
    assert verifier(max_lifetime=3600).verify(raw(edge, kid=kid), now=NOW).subject
    beyond = claims(exp=int(NOW) + 3600 + 31)
    with pytest.raises(LifetimeExceededError):
        verifier(max_lifetime=3600).verify(raw(beyond, kid=kid), now=NOW)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
def test_the_type_is_matched_as_rfc_9068_says(typ: str) -> None:
    assert verifier().verify(raw(claims(), typ=typ), now=NOW).subject == "user-1"


@pytest.mark.parametrize("kid", [KEY.kid, None])
def test_a_wrong_signature_is_refused_on_both_key_paths(kid: str | None) -> None:
    forged = IssuerKey(kid=KEY.kid, secret="c" * 40)
    with pytest.raises(InvalidSignatureError):
        verifier().verify(raw(claims(), key=forged, kid=kid), now=NOW)


def test_a_token_without_kid_is_tried_against_each_key() -> None:
    assert verifier().verify(raw(claims(), key=OLD, kid=None), now=NOW).kid == "2025"


@pytest.mark.parametrize("kid", [KEY.kid, None])
def test_the_audience_is_required_when_configured(kid: str | None) -> None:
    strict = verifier(audience="images.example")
    with pytest.raises(MissingClaimError):
        strict.verify(raw(claims(), kid=kid), now=NOW)
    with pytest.raises(InvalidClaimError):
        strict.verify(raw(claims(aud="elsewhere"), kid=kid), now=NOW)
    token = raw(claims(aud="images.example"), kid=kid)
    assert strict.verify(token, now=NOW).subject == "user-1"


@pytest.mark.parametrize("aud", ["https://other.example", "", 0, False])
@pytest.mark.parametrize("kid", [KEY.kid, None])
def test_without_an_audience_of_ours_one_naming_an_audience_is_refused(
    kid: str | None, aud: object
) -> None:
    """An access token for another resource server is not for us (RFC 9068 §4);
    nor is one whose `aud` is no audience at all."""
    with pytest.raises(InvalidClaimError):
        verifier().verify(raw(claims(aud=aud), kid=kid), now=NOW)


def test_unknown_scopes_grant_nothing() -> None:
    token = raw(claims(scope="images:read admin:all images:delete"))
    assert verifier().verify(token, now=NOW).scopes == {"images:read"}
    assert verifier().verify(raw(claims(scope=None)), now=NOW).scopes == frozenset()


def test_an_access_token_is_never_a_transformation_token() -> None:
    access = mint_access_token(KEY, issuer_id=ISSUER, subject="u", ttl=60)
    with pytest.raises(WrongTokenTypeError):
        verify(access, KEYS)


def test_a_transformation_token_is_never_an_access_token() -> None:
    # It even has every claim an access token needs.
    token = mint(
        KEY, issuer_id=ISSUER, transformations=[], ttl=60, subject="image-or-user"
    )
    with pytest.raises(WrongTokenTypeError):
        verifier().verify(token)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl": 0}, "positive lifetime"),
        ({"ttl": -5}, "positive lifetime"),
        ({"subject": ""}, "subject"),
        ({"scopes": ("images:admin",)}, "unknown scopes"),
        ({"roles": ("bad role",)}, "role"),
    ],
)
def test_minting_refuses_what_verification_would(
    kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"issuer_id": ISSUER, "subject": "u", "ttl": 60}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        mint_access_token(KEY, **arguments)  # type: ignore[arg-type]


def test_a_verify_only_key_mints_nothing() -> None:
    legacy = IssuerKey.stored(kid="old", secret="x" * 32, algorithm="HS512")
    assert legacy.verify_only
    with pytest.raises(ValueError, match="only verify"):
        mint_access_token(legacy, issuer_id=ISSUER, subject="u", ttl=60)


def test_every_refusal_is_a_signing_error() -> None:
    # The gateway maps the whole family to 401 invalid_token.
    with pytest.raises(SigningError):
        verifier().verify("not.a.token")
    with pytest.raises(SigningError):
        verifier().verify(None)


def test_parse_roles_bounds() -> None:
    assert parse_roles(["a", "b:c", "d-e_f.g"]) == {"a", "b:c", "d-e_f.g"}
    for bad in (["-a"], [""], ["x" * 65], [None]):
        with pytest.raises(ValueError, match="role"):
            parse_roles(bad)


def test_now_defaults_to_the_clock() -> None:
    token = mint_access_token(KEY, issuer_id=ISSUER, subject="u", ttl=60)
    assert verifier().verify(token).expires_at == pytest.approx(time.time() + 60, abs=2)
