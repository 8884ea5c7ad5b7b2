"""The catalog's key lookups, straight and through the cache that fronts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.catalog import CachedCatalog, SqliteCatalog

A = "a0000000-0000-4000-8000-000000000001"
B = "b0000000-0000-4000-8000-000000000002"


@pytest.fixture
def catalog(tmp_path: Path) -> SqliteCatalog:
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    await catalog.add_issuer(issuer_id=A, secret="a" * 40, kid="only-a")
    await catalog.add_key(A, secret="c" * 40, kid="shared")
    await catalog.add_issuer(issuer_id=B, secret="b" * 40, kid="shared")
    await catalog.add_key(B, secret="d" * 40, kid="revoked-at-b")
    await catalog.add_key(A, secret="e" * 40, kid="revoked-at-b")
    await catalog.revoke_key(B, "revoked-at-b")
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
def test_issuer_for_kid(catalog: SqliteCatalog, kid: str, owner: str | None) -> None:
    found = catalog.issuer_for_kid(kid)
    assert (found.id if found else None) == owner
    if found is not None:
        assert found.key(kid) is not None


def test_cached_lookups_follow_this_connections_changes_at_once(
    catalog: SqliteCatalog,
) -> None:
    cached = CachedCatalog(catalog, size=16, poll_interval=60.0)
    assert cached.issuer_for_kid("only-a") is not None
    await catalog.revoke_key(A, "only-a")
    assert cached.issuer_for_kid("only-a") is None


@pytest.mark.parametrize(
    ("poll_interval", "noticed"),
    [
        pytest.param(0.0, True, id="poll-due"),
        pytest.param(60.0, False, id="poll-not-yet-due"),
    ],
)
def test_cached_lookups_follow_other_connections_when_polled(
    catalog: SqliteCatalog, tmp_path: Path, poll_interval: float, noticed: bool
) -> None:
    """Another process (the CLI, another worker) is seen within `poll_interval`."""
    cached = CachedCatalog(catalog, size=16, poll_interval=poll_interval)
    cached.poll()
    assert cached.issuer_for_kid("only-a") is not None
    other = Catalog(tmp_path / "catalog.sqlite3")
    try:
        other.revoke_key(A, "only-a")
    finally:
        other.close()
    assert cached.issuer_for_kid("only-a") is not None  # not polled yet
    cached.poll()
    assert (cached.issuer_for_kid("only-a") is None) is noticed
