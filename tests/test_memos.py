"""The autouse fixture that starts every test with empty module-level memos.

Without it a mutant would run against memos filled by the unmutated code (mutmut
forks each mutant's tests from a process that has run the whole suite).
"""

from __future__ import annotations

from signing import InMemoryKeyStore, Issuer, verify
from signing.tokens import _header
from tests.conftest import (
    SEED_ISSUER,
    SEED_KEY,
    SEED_TRANSFORMATIONS,
    Mint,
    forget_module_memos,
)
from transforms.claims import _parse_remembered, parse_transformations


def _warm_memos(mint_token: Mint) -> None:
    keys = InMemoryKeyStore(
        {SEED_ISSUER: Issuer(id=SEED_ISSUER, name="seed", keys=(SEED_KEY,))}
    )
    verify(mint_token(), keys)
    parse_transformations(SEED_TRANSFORMATIONS)
    assert _header.cache_info().currsize == 1
    assert _parse_remembered.cache_info().currsize == 1


def test_a_test_that_warms_the_memos_leaves_them_warm(mint_token: Mint) -> None:
    _warm_memos(mint_token)


def test_the_next_test_starts_with_empty_memos() -> None:
    assert _header.cache_info().currsize == 0
    assert _parse_remembered.cache_info().currsize == 0


def test_forget_module_memos_empties_the_header_and_claims_memos(
    mint_token: Mint,
) -> None:
    _warm_memos(mint_token)

    assert forget_module_memos() >= 2

    assert _header.cache_info().currsize == 0
    assert _parse_remembered.cache_info().currsize == 0
