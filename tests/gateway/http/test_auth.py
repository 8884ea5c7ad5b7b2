"""`cookie`: one cookie from a Cookie header, as aiohttp's parser reads it
(same-named cookies apart: distinct names here, the difference in the table)."""

from __future__ import annotations

import pytest
from aiohttp._cookie_helpers import parse_cookie_header
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.auth import cookie

# RFC 6265 §4.1.1: a cookie-name is a token, a cookie-value cookie-octets,
# optionally in double quotes.
_TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~", min_size=1, max_size=12)  # fmt: skip
_OCTETS = st.text(
    "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\'),
    max_size=40,
)
_VALUE = st.one_of(_OCTETS, _OCTETS.map(lambda v: f'"{v}"'))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("s=v", "v"),
        ("a=1; s=v", "v"),
        ("a=1;s=v;b=2", "v"),
        ("  s = v", "v"),  # spaces around `=`, as aiohttp allows
        ("a=1, s=v", "v"),  # joined by a proxy with `,`
        ("a=1,s=v;b=2", "v"),
        # Unlike aiohttp: a `,` (a proxy's join) ends a value as `;` does; no
        # cookie value holds one, and aiohttp reads `v,` and `v,b=2`.
        ("s=v, b=2", "v"),
        ("s=v,b=2", "v"),
        ("s=", ""),
        ('s="v"', "v"),
        ('s="', '"'),
        # Unlike aiohttp: the first (a browser sends the longer path's first)
        ("s=v; s=w", "v"),
        # Unlike aiohttp: a `;` inside quotes still ends a pair (no cookie
        # value holds one, RFC 6265 §4.1.1)
        ('a="x;s=evil"; s=good', 'evil"'),
        # Unlike aiohttp: more than 8 spaces or tabs before a name, no pair
        ("a=1;" + " " * 8 + "s=v", "v"),
        ("a=1;" + " " * 9 + "s=v", None),
        ("xs=v", None),
        ("a=s=v", None),
        ("a=1;\ts=v ", "v"),
        ("a;a;a;s=v", "v"),
        ("", None),
        ("s", None),
    ],
)
def test_the_first_cookie_of_the_name(header: str, expected: str | None) -> None:
    assert cookie(header, "s") == expected


@given(
    pairs=st.dictionaries(_TOKEN, _VALUE, max_size=8),
    data=st.data(),
    separator=st.sampled_from(["; ", ";", " ;  "]),
    equals=st.sampled_from(["=", " =", "= ", " = "]),
)
def test_it_reads_what_aiohttps_parser_reads(
    pairs: dict[str, str], data: st.DataObject, separator: str, equals: str
) -> None:
    """Pairs joined by `;` (RFC 6265); the name one of theirs or not. (Joined
    by `,`, the value differs by design: see the table.)"""
    names = st.sampled_from(sorted(pairs)) if pairs else _TOKEN
    name = data.draw(st.one_of(names, _TOKEN), label="name")
    header = separator.join(f"{k}{equals}{v}" for k, v in pairs.items())
    parsed = {k: morsel.value for k, morsel in parse_cookie_header(header)}
    assert cookie(header, name) == parsed.get(name)
