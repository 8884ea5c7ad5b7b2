"""Which store the settings name: SQLite (the default) or PostgreSQL."""

from __future__ import annotations

import asyncio

from gateway.catalog.postgres import PostgresCatalog
from gateway.catalog.postgres import upgrade as postgres_upgrade
from gateway.catalog.sqlite import SqliteCatalog
from gateway.catalog.sqlite import schema as sqlite_schema
from gateway.catalog.store import CatalogStore
from gateway.config import Settings

__all__ = ["open_catalog", "upgrade"]


async def open_catalog(settings: Settings) -> CatalogStore:
    """The catalog store, its schema created or brought up to date.

    `OSError` for a SQLite file that cannot be made or read (the data
    directory's rights), `CatalogError` for the rest.
    """
    catalog = settings.catalog
    if catalog.postgres_url is not None:
        return await PostgresCatalog.open(
            catalog.postgres_url,
            pool_size=catalog.pool_size,
            timeout=catalog.database_timeout,
        )
    return await SqliteCatalog.open(settings.database)


async def upgrade(settings: Settings) -> tuple[int, int]:
    """Bring the catalog's schema up to date: its version before and after.

    What every start does too; `image-gateway db upgrade` does it alone, so
    that a deployment can migrate once before rolling out its replicas.
    """
    url = settings.catalog.postgres_url
    if url is None:
        before = await asyncio.to_thread(sqlite_schema.version, settings.database)
        store: CatalogStore = await SqliteCatalog.open(settings.database)
        await store.close()
        return before, len(sqlite_schema.MIGRATIONS)
    return await postgres_upgrade(url, timeout=settings.catalog.database_timeout)
