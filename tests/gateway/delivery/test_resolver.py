"""The resolver's decisions over a catalog that changes and loads while it decides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.catalog import CachedCatalog, ImageRecord, SqliteCatalog
from gateway.config import Settings, UpstreamSettings
from gateway.delivery.resolver import Resolver
from gateway.errors import ImageNotFoundError
from signing import IssuerKey, UnknownKeyError, mint
from transforms.cloudinary import CloudinaryAccount, CloudinaryAsset

ACCOUNT = CloudinaryAccount(cloud_name="c", api_key="k", api_secret="s")
SETTINGS = Settings(upstream=UpstreamSettings(cloudinary=ACCOUNT, delivery="redirect"))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteCatalog]:
    store = await SqliteCatalog.open(tmp_path / "catalog.sqlite3")
    yield store
    await store.close()


async def _issuer_with_images(
    store: SqliteCatalog, count: int
) -> tuple[str, IssuerKey, list[ImageRecord]]:
    issuer, key = await store.add_issuer(kid="k1")
    images = [
        await store.add_image(
            issuer_id=issuer.id, cloudinary=CloudinaryAsset(public_id=f"p{i}")
        )
        for i in range(count)
    ]
    return issuer.id, key, images


async def _resolving(store: SqliteCatalog, *, size: int = 100) -> Resolver:
    """A resolver over `store`'s cached view (`size` records), read once and
    then polled only when a test says so."""
    catalog = CachedCatalog(store, size=size, poll_interval=3600)
    resolver = Resolver(SETTINGS, catalog)
    await catalog.refresh()
    return resolver


async def test_a_key_revoked_while_images_load_is_refused_and_not_remembered(
    store: SqliteCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process revokes the key while a request loads its image records;
    a poll notices it meanwhile. The key must not be accepted, then or later."""
    issuer_id, key, (image,) = await _issuer_with_images(store, 1)
    resolver = await _resolving(store)
    catalog = resolver.catalog
    token = mint(key, issuer_id=issuer_id, transformations=[], ttl=3600)
    real_image, real_issuers = store.image, store.issuers
    asked, rereading_keys, image_read = (asyncio.Event() for _ in range(3))

    async def slow_image(image_id: str) -> ImageRecord | None:
        asked.set()
        # Read once the poll noticed the revocation, answered while it rereads.
        await asyncio.wait_for(rereading_keys.wait(), 5)
        record = await real_image(image_id)
        image_read.set()
        return record

    async def slow_issuers() -> object:
        rereading_keys.set()
        await asyncio.wait_for(image_read.wait(), 5)
        return await real_issuers()  # on a thread: the request goes on first

    monkeypatch.setattr(store, "image", slow_image)
    monkeypatch.setattr(store, "issuers", slow_issuers)
    loading = asyncio.ensure_future(resolver.redirect(token, image.id))
    await asyncio.wait_for(asked.wait(), 5)
    cli = await SqliteCatalog.open(tmp_path / "catalog.sqlite3")
    await cli.revoke_key(issuer_id, "k1")
    await cli.close()
    monkeypatch.setattr(catalog, "_next_poll", 0.0)  # a poll falls due
    noticing = asyncio.ensure_future(catalog.refresh())  # another request's
    with pytest.raises(UnknownKeyError):
        await loading
    await noticing
    with pytest.raises(UnknownKeyError):
        await resolver.redirect(token, image.id)


async def test_a_cache_smaller_than_a_tiling_still_resolves_it(
    store: SqliteCatalog,
) -> None:
    """Records loaded for a decision are used by it, whatever the LRU kept."""
    issuer_id, key, (image, layer) = await _issuer_with_images(store, 2)
    resolver = await _resolving(store, size=1)
    token = mint(key, issuer_id=issuer_id, transformations=[{"overlay": layer.id}])
    found = await resolver.redirect(token, image.id)
    assert "/l_authenticated:p1/" in found.location
    assert found.location.endswith("/p0")


async def test_an_image_loaded_while_other_images_change_is_answered(
    store: SqliteCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploads and edits elsewhere (another replica's, every few milliseconds)
    land during each load. The records were read after the request began, so
    they hold every write acknowledged before it: the answer, not a 503."""
    issuer_id, key, (image, busy) = await _issuer_with_images(store, 2)
    resolver = await _resolving(store)
    token = mint(key, issuer_id=issuer_id, transformations=[], ttl=3600)
    real_image = store.image

    async def image_while_others_change(image_id: str) -> ImageRecord | None:
        record = await real_image(image_id)
        await store.update_image(busy.id, {"description": "edited"})
        return record

    monkeypatch.setattr(store, "image", image_while_others_change)
    found = await resolver.redirect(token, image.id)
    assert found.location.endswith("/p0")


async def test_an_image_deleted_while_it_loads_is_not_remembered(
    store: SqliteCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request concurrent with a delete may still be answered, from what it
    read; the requests after the delete are not."""
    issuer_id, key, (image,) = await _issuer_with_images(store, 1)
    resolver = await _resolving(store)
    token = mint(key, issuer_id=issuer_id, transformations=[], ttl=3600)
    real_image = store.image

    async def image_then_deleted(image_id: str) -> ImageRecord | None:
        record = await real_image(image_id)
        await store.remove_image(image_id)
        return record

    monkeypatch.setattr(store, "image", image_then_deleted)
    await resolver.redirect(token, image.id)
    monkeypatch.setattr(store, "image", real_image)
    with pytest.raises(ImageNotFoundError):
        await resolver.redirect(token, image.id)


async def test_cache_lookups_keep_counting_across_catalog_changes(
    store: SqliteCatalog,
) -> None:
    """They are Prometheus counters: a change forgets the answers, never the
    count of lookups (another replica's upload would otherwise reset it)."""
    issuer_id, key, (image, other) = await _issuer_with_images(store, 2)
    resolver = await _resolving(store)
    token = mint(key, issuer_id=issuer_id, transformations=[], ttl=3600)
    for _ in range(3):
        await resolver.redirect(token, image.id)
    before = resolver.cache_lookups()
    await store.update_image(other.id, {"description": "edited"})
    after = resolver.cache_lookups()
    assert before["redirects:hit"] == 2
    assert after == before
