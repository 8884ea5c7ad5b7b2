"""The hot path's view of the catalog: keys in memory, images cached, changes followed."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing

import pytest

from gateway import Settings
from gateway.catalog import (
    MISSING,
    CachedCatalog,
    CatalogStore,
    PostgresCatalog,
    open_catalog,
)
from tests.conftest import BOTH_CATALOGS, SEED_IMAGE, SEED_ISSUER
from tests.helpers import eventually

pytestmark = BOTH_CATALOGS

A = "a0000000-0000-4000-8000-000000000001"
B = "b0000000-0000-4000-8000-000000000002"


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[CatalogStore]:
    store = await open_catalog(settings)
    await store.add_issuer(issuer_id=A, secret="a" * 40, kid="only-a")
    await store.add_key(A, secret="c" * 40, kid="shared")
    await store.add_issuer(issuer_id=B, secret="b" * 40, kid="shared")
    await store.add_key(B, secret="d" * 40, kid="revoked-at-b")
    await store.add_key(A, secret="e" * 40, kid="revoked-at-b")
    await store.revoke_key(B, "revoked-at-b")
    yield store
    await store.close()


async def _view(store: CatalogStore, poll_interval: float) -> CachedCatalog:
    view = CachedCatalog(store, size=16, poll_interval=poll_interval)
    if isinstance(store, PostgresCatalog):
        # Its listener starts by reading the data version: landing between a
        # test's write and the store noting its version, that read would be
        # another writer's change (all forgotten, keys included).
        await asyncio.wait_for(store.listening.wait(), 5)
    await view.refresh()
    return view


@pytest.mark.parametrize(
    ("kid", "owner"),
    [
        pytest.param("only-a", A, id="one-owner"),
        pytest.param("shared", None, id="two-owners"),
        pytest.param("revoked-at-b", A, id="revoked-elsewhere"),
        pytest.param("nobody", None, id="unknown"),
    ],
)
async def test_issuer_for_kid_names_the_one_active_owner(
    store: CatalogStore, kid: str, owner: str | None
) -> None:
    view = await _view(store, 60.0)
    found = view.issuer_for_kid(kid)
    assert (found.id if found else None) == owner
    if found is not None:
        assert found.key(kid) is not None


async def test_a_write_through_this_store_is_seen_at_once(store: CatalogStore) -> None:
    view = await _view(store, 60.0)
    assert view.issuer_for_kid("only-a") is not None
    await store.revoke_key(A, "only-a")
    assert view.due()
    await view.refresh()
    assert view.issuer_for_kid("only-a") is None


async def test_another_processs_write_is_seen_without_a_poll(
    store: CatalogStore, settings: Settings
) -> None:
    """Another worker, replica or the CLI: SQLite's shared change signal, or
    PostgreSQL's notification, tells at once; no poll is needed."""
    view = await _view(store, 3600.0)
    assert view.issuer_for_kid("only-a") is not None
    other = await open_catalog(settings)
    try:
        await other.revoke_key(A, "only-a")
    finally:
        await other.close()
    await eventually(view.due, seconds=1.0)
    await view.refresh()
    assert view.issuer_for_kid("only-a") is None


@pytest.mark.parametrize(
    ("poll_interval", "noticed"),
    [
        pytest.param(0.0, True, id="poll-due"),
        pytest.param(3600.0, False, id="poll-not-yet-due"),
    ],
)
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_unsignalled_write_is_seen_when_a_poll_is_due(
    store: CatalogStore, settings: Settings, poll_interval: float, noticed: bool
) -> None:
    """A writer that does not stamp the signal (sqlite3 by hand, an older
    release): the poll of `data_version` is the fallback. (PostgreSQL's twin,
    a missed notification, is in test_postgres.py.)"""
    view = await _view(store, poll_interval)
    assert view.issuer_for_kid("only-a") is not None
    with closing(sqlite3.connect(settings.database)) as db, db:
        db.execute("UPDATE issuer_keys SET revoked_at = 'now' WHERE kid = 'only-a'")
    if view.due():
        await view.refresh()
    assert (view.issuer_for_kid("only-a") is None) is noticed


async def test_image_records_and_their_absence_are_cached_until_a_change(
    store: CatalogStore,
) -> None:
    view = await _view(store, 60.0)
    await store.add_issuer(issuer_id=SEED_ISSUER, secret="s" * 40, kid="seed")
    assert view.cached_image(SEED_IMAGE) is MISSING
    assert await view.image(SEED_IMAGE) is None
    assert view.cached_image(SEED_IMAGE) is None  # known absent, not asked again
    await store.add_image(
        issuer_id=SEED_ISSUER, image_id=SEED_IMAGE, origin="https://example.org/a.jpg"
    )
    assert view.cached_image(SEED_IMAGE) is MISSING  # forgotten at once
    record = await view.image(SEED_IMAGE)
    assert record is not None
    assert view.cached_image(SEED_IMAGE) == record


async def test_a_load_that_raced_a_change_stores_nothing(store: CatalogStore) -> None:
    """A record read before a change must not be cached after it."""
    view = await _view(store, 60.0)
    await store.add_issuer(issuer_id=SEED_ISSUER, secret="s" * 40, kid="seed")
    real_image = store.image

    async def image_then_change(image_id: str) -> object:
        found = await real_image(image_id)
        await store.add_image(
            issuer_id=SEED_ISSUER, image_id=image_id, origin="https://example.org/"
        )
        return found

    store.image = image_then_change  # type: ignore[method-assign, assignment]
    assert await view.image(SEED_IMAGE) is None
    assert view.cached_image(SEED_IMAGE) is MISSING


async def test_an_image_write_leaves_the_keys_in_memory(store: CatalogStore) -> None:
    """Uploads by the hundred must not make every request reload the issuers."""
    view = await _view(store, 60.0)
    await store.add_issuer(issuer_id=SEED_ISSUER, secret="s" * 40, kid="seed")
    await view.refresh()
    await store.add_image(
        issuer_id=SEED_ISSUER, image_id=SEED_IMAGE, origin="https://example.org/a.jpg"
    )
    assert not view.due()
    assert view.cached_image(SEED_IMAGE) is MISSING  # the image cache forgot
