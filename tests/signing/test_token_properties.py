"""Token verification on generated input: a `VerifiedToken` or a `SigningError`, never else."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from signing import (
    IssuerPolicy,
    KeyStore,
    SigningError,
    TokenVerifier,
    VerifiedToken,
    verify,
)
from tests.signing.test_tokens import (
    ISSUER,
    NEW,
    OLD,
    OTHER_ISSUER,
    STRANGER,
    _part,
    store,
)

# Bounded so that the suite stays fast; no example database is written.
EXAMPLES: Final = settings(max_examples=200, deadline=None, database=None)
LARGE: Final = 1 << 20  # tokens larger than the gateway's limit reach the parsers
NOW: Final = int(time.time())
B64URL: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass(frozen=True, slots=True)
class Fragment:
    """JSON text that `json.dumps` will not write: 5000 digits, 1e400, deep nesting."""

    text: str


Json: TypeAlias = (
    bool | int | float | str | Fragment | list["Json"] | dict[str, "Json"] | None
)


def dump(value: Json, *, ascii_only: bool) -> str:
    """JSON text of `value`; without `ascii_only`, lone surrogates are written raw."""
    match value:
        case Fragment(text=text):
            return text
        case list():
            return "[" + ",".join(dump(v, ascii_only=ascii_only) for v in value) + "]"
        case dict():
            return (
                "{"
                + ",".join(
                    json.dumps(k, ensure_ascii=ascii_only)
                    + ":"
                    + dump(v, ascii_only=ascii_only)
                    for k, v in value.items()
                )
                + "}"
            )
        case _:
            return json.dumps(value, ensure_ascii=ascii_only)  # NaN, Infinity too


def sign(header: Json, payload: Json, secret: str, *, ascii_only: bool) -> str:
    """A token with a good HS256 MAC over whatever header and payload it is given.

    Lone surrogates written raw become invalid UTF-8 (`surrogatepass`).
    """
    head, body = (
        _part(dump(part, ascii_only=ascii_only).encode("utf-8", "surrogatepass"))
        for part in (header, payload)
    )
    mac = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256)
    return f"{head}.{body}.{_part(mac.digest())}"


texts = st.text() | st.text(
    st.sampled_from(["\ud800", "\udfff", "\udc00", "a", "é", "\x00", '"', "\\", "𝄞"])
)
fragments = st.builds(
    Fragment,
    st.sampled_from(
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "-1e400",
            "-0",
            "1E+2",
        ]
    )
    # Built in `map`: a strategy's repr holds its values, and Hypothesis warns
    # about large ones.
    | st.sampled_from([4300, 4301, 5000]).map(lambda n: "-" + "9" * n)
    | st.just(100_000).map(lambda d: "[" * d + "]" * d)
    | st.integers(1, 5000).map(lambda n: "9" * n)
    | st.integers(1, 3000).map(lambda d: "[" * d + "]" * d)
    | st.integers(1, 3000).map(lambda d: '{"a":' * d + "0" + "}" * d),
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(10**400), 10**400)
    | st.floats()  # NaN and ±inf included
    | texts
    | fragments
)
anything: st.SearchStrategy[Json] = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3)
    ),
    max_leaves=8,
)
times = (
    st.integers(NOW - 10**5, NOW + 10**5)
    | st.floats(NOW - 1e5, NOW + 1e5)
    | st.sampled_from([-62135596800, 253402300799])  # the ends of years 1 to 9999
)
# Not NumericDates, or beyond any date: pyjwt takes `int()` of most of these.
odd_times = (
    st.sampled_from(
        [10**400, -(10**400), 2**1024, 1e300, "9999999999", True, False, None]
    )
    | st.integers(-(10**400), 10**400)
    | st.integers(2**1024, 10**400)  # past `float()`, and never expired
    | st.floats(allow_nan=True, allow_infinity=True)
    | fragments
)


def overlaid(
    base: st.SearchStrategy[dict[str, Json]], names: list[str]
) -> st.SearchStrategy[dict[str, Json]]:
    """`base`, some of its `names` (or another key) given any JSON at all."""
    wrong = st.dictionaries(st.sampled_from(names) | texts, anything, max_size=1)
    return st.tuples(base, wrong).map(lambda both: {**both[0], **both[1]})


# Claims that verify, but for those drawn wrong: every registered claim may be
# missing, of any type, or of any value.
claim_sets = overlaid(
    st.fixed_dictionaries(
        {"iss": st.sampled_from([ISSUER, ISSUER, OTHER_ISSUER])},
        optional={
            "sub": texts,
            "aud": st.just("gw") | st.lists(st.just("gw") | texts, max_size=2),
            "exp": st.one_of(times, odd_times, odd_times),
            "nbf": st.one_of(times, odd_times, odd_times),
            "iat": st.one_of(times, odd_times, odd_times),
            "jti": texts,
            "transformations": anything,
        },
    ),
    ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "transformations"],
)
headers = overlaid(
    st.fixed_dictionaries(
        {"alg": st.just("HS256")},
        optional={
            "kid": st.sampled_from([NEW.kid, OLD.kid, "1999"]),
            "typ": st.just("JWT"),
        },
    ),
    ["alg", "kid", "typ", "crit", "b64"],
)
policies = st.builds(
    IssuerPolicy,
    require_exp=st.booleans(),
    max_lifetime=st.none() | st.integers(0, 10**6),
)

Entry: TypeAlias = Callable[[str, KeyStore, str | None], VerifiedToken]


def with_verify(token: str, keys: KeyStore, audience: str | None) -> VerifiedToken:
    return verify(token, keys, audience=audience, max_bytes=LARGE)


def with_verifier(token: str, keys: KeyStore, audience: str | None) -> VerifiedToken:
    return TokenVerifier(keys, audience=audience, max_bytes=LARGE).verify(token)


ENTRY_POINTS = pytest.mark.parametrize(
    "entry",
    [
        pytest.param(with_verify, id="verify"),
        pytest.param(with_verifier, id="TokenVerifier"),
    ],
)


def verified_or_refused(
    entry: Entry, token: str, keys: KeyStore, audience: str | None
) -> VerifiedToken | None:
    """Anything but a `VerifiedToken` or a `SigningError` fails the example."""
    try:
        result = entry(token, keys, audience)
    except SigningError as exc:
        event(type(exc).__name__)
        return None
    event("verified")
    assert isinstance(result, VerifiedToken)
    return result


@ENTRY_POINTS
@EXAMPLES
@given(
    claims=claim_sets,
    kid=st.sampled_from([NEW.kid, None]),
    policy=policies,
    audience=st.none() | st.just("gw"),
)
# Falsy audiences, which pyjwt reads as none: rare among the drawn claims.
@example(
    claims={"iss": ISSUER, "aud": ""}, kid=None, policy=IssuerPolicy(), audience=None
)
@example(
    claims={"iss": ISSUER, "aud": 0}, kid=NEW.kid, policy=IssuerPolicy(), audience=None
)
@example(
    claims={"iss": ISSUER, "aud": {}}, kid=NEW.kid, policy=IssuerPolicy(), audience=None
)
def test_any_claims_of_a_known_key_verify_or_are_a_signing_error(
    entry: Entry,
    claims: dict[str, Json],
    kid: str | None,
    policy: IssuerPolicy,
    audience: str | None,
) -> None:
    header: dict[str, Json] = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    token = sign(header, claims, NEW.secret, ascii_only=True)
    if verified_or_refused(entry, token, store(policy), audience) is None:
        return
    # A token verified is for us: it names our audience, or none when we have none.
    aud = claims.get("aud", [])
    if audience is None:
        assert aud == [], aud
    else:
        assert aud == audience or (isinstance(aud, list) and audience in aud), aud


@ENTRY_POINTS
@EXAMPLES
@given(
    header=headers | anything,
    payload=claim_sets | anything,
    secret=st.sampled_from([NEW.secret, OLD.secret, STRANGER.secret]),
    ascii_only=st.booleans(),
    policy=policies,
    audience=st.none() | st.just("gw"),
)
def test_any_signed_json_verifies_or_is_a_signing_error(
    entry: Entry,
    header: Json,
    payload: Json,
    secret: str,
    ascii_only: bool,
    policy: IssuerPolicy,
    audience: str | None,
) -> None:
    token = sign(header, payload, secret, ascii_only=ascii_only)
    verified_or_refused(entry, token, store(policy), audience)


segments = (
    st.text(st.sampled_from(B64URL + "="), max_size=60)
    | st.binary(max_size=60).map(_part)
    | anything.map(lambda v: _part(dump(v, ascii_only=True).encode()))
)


@ENTRY_POINTS
@EXAMPLES
@given(
    token=texts
    | st.lists(segments, max_size=5).map(".".join)
    | st.sampled_from(["\ud800", "é", "x", "."]).map(lambda c: c * (LARGE + 1))
)
def test_any_string_verifies_or_is_a_signing_error(entry: Entry, token: str) -> None:
    verified_or_refused(entry, token, store(), None)
