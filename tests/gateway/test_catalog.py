"""The catalog's key lookups, straight and through the cache that fronts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.catalog import CachedCatalog, Catalog

A = "a0000000-0000-4000-8000-000000000001"
B = "b0000000-0000-4000-8000-000000000002"


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    catalog.add_issuer(issuer_id=A, secret="a" * 40, kid="only-a")
    catalog.add_key(A, secret="c" * 40, kid="shared")
    catalog.add_issuer(issuer_id=B, secret="b" * 40, kid="shared")
    catalog.add_key(B, secret="d" * 40, kid="revoked-at-b")
    catalog.add_key(A, secret="e" * 40, kid="revoked-at-b")
    catalog.revoke_key(B, "revoked-at-b")
    return catalog


@pytest.mark.parametrize(
    ("kid", "owner"),
    [
        pytest.param("only-a", A, id="one-owner"),
        pytest.param("shared", None, id="two-owners"),
        pytest.param("revoked-at-b", A, id="revoked-elsewhere"),
        pytest.param("nobody", None, id="unknown"),
    ],
)
def test_issuer_for_kid(catalog: Catalog, kid: str, owner: str | None) -> None:
    found = catalog.issuer_for_kid(kid)
    assert (found.id if found else None) == owner
    if found is not None:
        assert found.key(kid) is not None


def test_cached_kid_lookups_follow_revocation(catalog: Catalog) -> None:
    cached = CachedCatalog(catalog, size=16, poll_interval=60.0)
    cached.revision()
    assert cached.issuer_for_kid("only-a") is not None
    catalog.revoke_key(A, "only-a")
    cached.revision()  # what each request does first
    assert cached.issuer_for_kid("only-a") is None
