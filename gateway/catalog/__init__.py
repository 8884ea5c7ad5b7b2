"""The catalog of issuers, their keys and their images: records, the store
contract, the SQLite and PostgreSQL stores, and the cached view the hot path reads."""

from gateway.catalog.cached import MISSING, CachedCatalog
from gateway.catalog.location import open_catalog
from gateway.catalog.postgres import PostgresCatalog
from gateway.catalog.records import (
    EDITABLE,
    ApiKey,
    CatalogError,
    Cursor,
    ImageChangedError,
    ImageRecord,
    Ingest,
    IngestState,
    Original,
    Page,
    SortKey,
)
from gateway.catalog.sqlite import SqliteCatalog
from gateway.catalog.store import CatalogStore, Change, ChangeFeed, Listener

__all__ = [
    "EDITABLE",
    "MISSING",
    "ApiKey",
    "CachedCatalog",
    "CatalogError",
    "CatalogStore",
    "Change",
    "ChangeFeed",
    "Cursor",
    "ImageChangedError",
    "ImageRecord",
    "Ingest",
    "IngestState",
    "Listener",
    "Original",
    "Page",
    "PostgresCatalog",
    "SortKey",
    "SqliteCatalog",
    "open_catalog",
]
