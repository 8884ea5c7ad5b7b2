"""Typed application and request keys (no string keys anywhere)."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor

from aiohttp import web

from gateway.catalog import CachedCatalog
from gateway.cloudinary import LocalCloud, Uploader
from gateway.config import Settings
from gateway.delivery.proxy import Proxy
from gateway.delivery.renderer import Renderer
from gateway.delivery.resolver import Resolver
from gateway.demo import Demo
from gateway.http.credentials import Authenticator
from gateway.http.limits import UploadGate
from gateway.ops.lifecycle import Lifecycle
from gateway.ops.metrics import Exposition, Metrics
from gateway.originals.ingest import Ingestor
from gateway.originals.store import OriginalStore

__all__ = [
    "AUTHENTICATOR",
    "CATALOG",
    "CDN",
    "DEMO",
    "ERROR_HEADERS",
    "EXECUTOR",
    "INGESTOR",
    "ISSUER",
    "LIFECYCLE",
    "METRICS",
    "PROXY",
    "RENDERER",
    "REQUEST_ID",
    "RESOLVER",
    "SETTINGS",
    "STORE",
    "UPLOADER",
    "UPLOAD_GATE",
    "Lifecycle",
]

SETTINGS = web.AppKey("settings", Settings)


LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
METRICS = web.AppKey("metrics", Metrics)
EXPOSITION = web.AppKey("exposition", Exposition)
# The catalog as the hot path reads it; its `.store` for everything else.
CATALOG = web.AppKey("catalog", CachedCatalog)
RESOLVER = web.AppKey("resolver", Resolver)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
STORE = web.AppKey("store", OriginalStore)
# Threads for CPU-bound image work: renders and probing uploads.
EXECUTOR = web.AppKey("executor", Executor)
RENDERER = web.AppKey("renderer", Renderer)
# Streams Cloudinary's answers through (sized binaries in redirect mode).
PROXY = web.AppKey("proxy", Proxy)
DEMO = web.AppKey("demo", Demo)
# Cloudinary's Upload API (with CLOUDINARY_URL) or the stand-in (GATEWAY_CDN=local).
UPLOADER = web.AppKey("uploader", Uploader)
CDN = web.AppKey("cdn", LocalCloud)  # only with GATEWAY_CDN=local
INGESTOR = web.AppKey("ingestor", Ingestor)
UPLOAD_GATE = web.AppKey("upload_gate", UploadGate)
REQUEST_ID = web.RequestKey("request_id", str)
# Headers a handler wants on its refusals too (IIIF's CORS headers).
ERROR_HEADERS = web.RequestKey[Mapping[str, str]]("error_headers")
# The issuer a request acts for, once known: for the access log.
ISSUER = web.RequestKey("issuer", str)
