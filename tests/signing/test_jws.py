"""Our private pyjwt instances decide exactly as pyjwt's own code does."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import jwt
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from signing.jws import FAST_SEGMENTS, PLAIN_JWT, _segment, private_jwt

EXAMPLES: Final = settings(max_examples=500, deadline=None, database=None)
B64URL: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SECRET: Final = "s" * 32
# pyjwt's own layers, with its own algorithms: what ours must agree with.
STOCK: Final = jwt.PyJWS()

# Mostly the alphabet, padding, and what lies next to it in ASCII (`+/.`),
# with now and then any byte at all.
segments = st.one_of(
    st.text(alphabet=B64URL + "=+/.! \n\x00é", max_size=64).map(
        lambda s: s.encode("utf-8")
    ),
    st.binary(max_size=64),
    st.binary(max_size=48).map(lambda b: base64.urlsafe_b64encode(b)),
    st.binary(max_size=48).map(lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")),
)


def _outcome(decode: object, segment: bytes) -> tuple[str, bytes | str]:
    assert callable(decode)
    try:
        return "ok", decode(segment, "payload")
    except jwt.DecodeError as exc:
        return "refused", str(exc)


def test_the_fast_segments_are_used_on_the_checked_pyjwt() -> None:
    # A new pyjwt release falls back to pyjwt's own code: this pin fails first,
    # as a reminder to check `_segment` against it and add it to the list.
    assert jwt.__version__ == "2.15.1"
    assert FAST_SEGMENTS
    assert PLAIN_JWT._jws._decode_base64url_segment is _segment


def test_pyjwts_own_instances_are_untouched() -> None:
    private_jwt(None)
    assert jwt.PyJWS._decode_base64url_segment is not _segment
    assert jwt.api_jws._jws_global_obj._decode_base64url_segment is not _segment


@EXAMPLES
@given(segments)
@example(b"!!!!")
@example(b"YQ==")
@example(b"YQ=")
@example(b"YR")  # non-zero trailing bits
@example(b"Y===")
@example(b"====")  # four padding characters: pyjwt stops at three
@example(b"YWJj====")
@example(b"YWJ")  # three characters, their spare bits set
@example(b"YWI")
@example(b"a+b/")
@example(b"abcde")
def test_a_segment_decodes_or_is_refused_exactly_as_pyjwt_does(segment: bytes) -> None:
    assert _outcome(_segment, segment) == _outcome(
        jwt.PyJWS._decode_base64url_segment, segment
    )


def _verdict(jws: jwt.PyJWS, token: str) -> tuple[str, object]:
    try:
        return "ok", jws.decode_complete(token, SECRET, algorithms=["HS256"])
    except jwt.PyJWTError as exc:
        return type(exc).__name__, str(exc)


def _splice(token: str, part: int, replacement: str) -> str:
    parts = token.split(".")
    parts[part] = replacement
    return ".".join(parts)


@EXAMPLES
@given(
    st.binary(max_size=64),
    st.integers(min_value=0, max_value=2),
    st.text(alphabet=B64URL + "=+/!.", max_size=40),
)
def test_a_tampered_token_gets_pyjwts_own_verdict(
    payload: bytes, part: int, replacement: str
) -> None:
    token = STOCK.encode(payload, SECRET, algorithm="HS256")
    for candidate in (token, _splice(token, part, replacement)):
        assert _verdict(PLAIN_JWT._jws, candidate) == _verdict(STOCK, candidate)


@EXAMPLES
@given(
    st.sampled_from(["HS256", "HS384", "HS512"]),
    st.binary(min_size=1, max_size=200),
    st.binary(max_size=300),
)
def test_our_hmac_signs_and_verifies_as_pyjwts_own(
    algorithm: str, key: bytes, message: bytes
) -> None:
    ours = PLAIN_JWT._jws._algorithms[algorithm]
    stock = STOCK._algorithms[algorithm]
    assert type(ours) is not type(stock)
    signature = stock.sign(message, key)
    assert ours.sign(message, key) == signature
    assert ours.verify(message, key, signature)
    assert not ours.verify(message + b".", key, signature)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("e30.e30.", id="empty-signature"),
        pytest.param("e30=.e30.AAAA", id="padded-header"),
        pytest.param("!!!!.e30.AAAA", id="junk-header"),
        pytest.param("e30.e3+.AAAA", id="standard-alphabet"),
    ],
)
def test_malformed_tokens_are_refused_as_pyjwt_refuses_them(token: str) -> None:
    verdict = _verdict(PLAIN_JWT._jws, token)
    assert verdict[0] != "ok"
    assert verdict == _verdict(STOCK, token)


# The peek: a payload read before verification (for `iss`) is parsed once.

REGISTERED: Final = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})
claims_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


@EXAMPLES
@given(st.dictionaries(st.text(max_size=6), claims_values, max_size=5))
@example({"sub": 1, "aud": [], "jti": {}})
def test_a_peeked_payload_decodes_to_what_pyjwt_decodes(
    claims: dict[str, object],
) -> None:
    # Registered claims are validated by pyjwt (and ours), not the peek's concern.
    claims = {k: v for k, v in claims.items() if k not in REGISTERED}
    claims["iss"] = "issuer"
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    ours = private_jwt(None)
    peeked = ours.peek(token.split(".")[1])
    decoded = ours.decode(token, SECRET, algorithms=["HS256"])
    assert decoded == jwt.decode(token, SECRET, algorithms=["HS256"])
    assert decoded is peeked  # parsed once


def test_a_peeked_payload_serves_one_decode_only() -> None:
    """The parse is handed over once: two verifications never share claims."""
    token = jwt.encode({"iss": "issuer", "t": [1]}, SECRET, algorithm="HS256")
    ours = private_jwt(None)
    ours.peek(token.split(".")[1])
    first = ours.decode(token, SECRET, algorithms=["HS256"])
    second = ours.decode(token, SECRET, algorithms=["HS256"])
    assert first == second
    assert first is not second


def test_a_stale_peek_is_not_taken_for_another_tokens_payload() -> None:
    """Peeked, then refused (a bad signature): the next token decodes its own."""
    refused = jwt.encode({"iss": "issuer", "n": 1}, "x" * 32, algorithm="HS256")
    token = jwt.encode({"iss": "issuer", "n": 2}, SECRET, algorithm="HS256")
    ours = private_jwt(None)
    ours.peek(refused.split(".")[1])
    with pytest.raises(jwt.InvalidSignatureError):
        ours.decode(refused, SECRET, algorithms=["HS256"])
    assert ours.decode(token, SECRET, algorithms=["HS256"])["n"] == 2


def test_a_peek_in_one_thread_is_not_taken_in_another() -> None:
    token = jwt.encode({"iss": "issuer", "t": [1]}, SECRET, algorithm="HS256")
    ours = private_jwt(None)
    peeked = ours.peek(token.split(".")[1])
    with ThreadPoolExecutor(1) as pool:
        elsewhere = pool.submit(
            ours.decode, token, SECRET, algorithms=["HS256"]
        ).result()
    assert elsewhere == peeked
    assert elsewhere is not peeked
