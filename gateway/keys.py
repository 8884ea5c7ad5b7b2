"""Typed application and request keys (no string keys anywhere)."""

from __future__ import annotations

from aiohttp import web

from gateway.catalog import CachedCatalog, Catalog
from gateway.config import Settings
from gateway.delivery import Deliverer
from gateway.demo import Demo
from gateway.render import Renderer
from gateway.storage import OriginalStore

__all__ = [
    "CATALOG",
    "DELIVERER",
    "DEMO",
    "RENDERER",
    "REQUEST_ID",
    "SETTINGS",
    "STORE",
    "WRITABLE_CATALOG",
]

SETTINGS = web.AppKey("settings", Settings)
CATALOG = web.AppKey("catalog", CachedCatalog)
WRITABLE_CATALOG = web.AppKey("writable_catalog", Catalog)
DELIVERER = web.AppKey("deliverer", Deliverer)
STORE = web.AppKey("store", OriginalStore)
RENDERER = web.AppKey("renderer", Renderer)
DEMO = web.AppKey("demo", Demo)
REQUEST_ID = web.RequestKey("request_id", str)
