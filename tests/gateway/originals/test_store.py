"""Content-addressed originals, and the sweep of those a crash left behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.catalog import SqliteCatalog
from gateway.originals.ingest import add_original
from gateway.originals.store import OriginalStore
from tests.conftest import SEED_ISSUER, SEED_KEY, render_settings
from tests.images import BLUE, GREEN, RED, solid

HOUR = 3600.0


def _aged(store: OriginalStore, data: bytes, seconds: float) -> str:
    sha256 = store.put(data)
    then = time.time() - seconds
    os.utime(store.path(sha256), (then, then))
    return sha256


def test_the_sweep_removes_only_old_originals_no_image_refers_to(
    tmp_path: Path,
) -> None:
    store = OriginalStore(tmp_path)
    orphan = _aged(store, solid((4, 4), RED), 2 * HOUR)
    young = _aged(store, solid((4, 4), GREEN), 60)
    used = _aged(store, solid((4, 4), BLUE), 2 * HOUR)
    assert store.sweep({used}, older_than=HOUR) == 1
    assert not store.path(orphan).exists()
    assert store.path(young).exists()
    assert store.path(used).exists()


def test_storing_an_existing_original_makes_it_young_again(tmp_path: Path) -> None:
    """Another process may register it right now: the sweep must spare it."""
    store = OriginalStore(tmp_path)
    data = solid((4, 4), RED)
    sha256 = _aged(store, data, 2 * HOUR)
    assert store.put(data) == sha256
    assert store.sweep(set(), older_than=HOUR) == 0


async def test_start_up_sweeps_what_a_crash_left(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    settings: Settings = render_settings(tmp_path)
    catalog = await SqliteCatalog.open(settings.database)
    store = OriginalStore(settings.originals)
    try:
        await catalog.add_issuer(issuer_id=SEED_ISSUER, secret=SEED_KEY.secret)
        kept = await add_original(
            catalog,
            store,
            settings.limits,
            issuer_id=SEED_ISSUER,
            data=solid((4, 4), RED),
        )
    finally:
        await catalog.close()
    assert kept.original is not None
    then = time.time() - 2 * HOUR
    os.utime(store.path(kept.original.sha256), (then, then))
    stray = _aged(store, solid((4, 4), GREEN), 2 * HOUR)  # stored, then a crash
    await aiohttp_client(create_app(settings))
    assert not store.path(stray).exists()
    assert store.path(kept.original.sha256).exists()


async def test_start_up_spares_a_sibling_workers_spools_and_sweeps_old_ones(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """A worker (re)starting beside others must not delete their uploads and
    originals under way; what a dead process left, hours old, goes."""
    settings: Settings = render_settings(tmp_path)
    for folder in (settings.uploads, settings.originals / "incoming"):
        folder.mkdir(parents=True)
        (folder / "in-use").write_bytes(b"a sibling's")
        old = folder / "left-by-a-crash"
        old.write_bytes(b"stale")
        then = time.time() - 2 * HOUR
        os.utime(old, (then, then))
    await aiohttp_client(create_app(settings))
    for folder in (settings.uploads, settings.originals / "incoming"):
        assert sorted(p.name for p in folder.iterdir()) == ["in-use"]
