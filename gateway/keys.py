"""Typed application and request keys (no string keys anywhere)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.catalog import CachedCatalog, Catalog
from gateway.config import Settings
from gateway.delivery import Deliverer
from gateway.demo import Demo
from gateway.ingest import Ingestor
from gateway.render import Renderer
from gateway.storage import OriginalStore
from gateway.upstream import CloudinaryUploader

__all__ = [
    "CATALOG",
    "DELIVERER",
    "DEMO",
    "INGESTOR",
    "MIDDLEWARES",
    "RENDERER",
    "REQUEST_ID",
    "SETTINGS",
    "STORE",
    "UPLOADER",
    "UPLOADS",
    "WRITABLE_CATALOG",
]

SETTINGS = web.AppKey("settings", Settings)
# Outermost first; gateway.routes composes them around every handler.
MIDDLEWARES = web.AppKey[tuple[Middleware, ...]]("middlewares")
CATALOG = web.AppKey("catalog", CachedCatalog)
WRITABLE_CATALOG = web.AppKey("writable_catalog", Catalog)
DELIVERER = web.AppKey("deliverer", Deliverer)
STORE = web.AppKey("store", OriginalStore)
RENDERER = web.AppKey("renderer", Renderer)
DEMO = web.AppKey("demo", Demo)
UPLOADS = web.AppKey("uploads", Path)  # where uploads are spooled
UPLOADER = web.AppKey("uploader", CloudinaryUploader)  # only with CLOUDINARY_URL
INGESTOR = web.AppKey("ingestor", Ingestor)
REQUEST_ID = web.RequestKey("request_id", str)
