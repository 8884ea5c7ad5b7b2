"""Typed application and request keys (no string keys anywhere)."""

from __future__ import annotations

from aiohttp import web

from gateway.catalog import CachedCatalog
from gateway.config import Settings
from gateway.delivery import Deliverer

__all__ = ["CATALOG", "DELIVERER", "REQUEST_ID", "SETTINGS"]

SETTINGS = web.AppKey("settings", Settings)
CATALOG = web.AppKey("catalog", CachedCatalog)
DELIVERER = web.AppKey("deliverer", Deliverer)
REQUEST_ID = web.RequestKey("request_id", str)
