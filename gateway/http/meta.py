"""The endpoints about the gateway itself: status, the API description, the demo page."""

from __future__ import annotations

import asyncio
import contextlib
import json
from importlib import metadata, resources
from typing import Final

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from gateway.delivery.headers import media_qualities
from gateway.errors import JSONAPI, CatalogUnavailableError
from gateway.http import demo
from gateway.keys import CATALOG, DEMO, EXPOSITION, LIFECYCLE, METRICS, SETTINGS

__all__ = ["index", "livez", "metrics", "openapi", "readyz", "status"]

_OPENAPI: Final = (resources.files("gateway") / "openapi.json").read_bytes()
_VERSION: Final = metadata.version("image-gateway")


async def index(request: web.Request) -> web.Response:
    """`GET /`: where to go from here, as JSON; with `serve --demo`, the
    playground itself for a browser (a client that prefers HTML: `curl` and
    API clients get the JSON)."""
    with_demo = DEMO in request.app
    if with_demo and _prefers_html(request.headers.get(hdrs.ACCEPT)):
        page = await demo.page(request)
        page.headers["Vary"] = "Accept, Accept-Encoding"
        return page
    base = request.app[SETTINGS].base_url
    links = {
        name: str(base / path.lstrip("/")) if path != "/" else str(base)
        for name, path in (
            ("self", "/"),
            ("images", "/v1/images"),
            ("openapi", "/openapi.json"),
            ("status", "/status"),
            ("livez", "/livez"),
            ("readyz", "/readyz"),
            ("metrics", "/metrics"),
        )
    }
    links["delivery"] = f"{base / 'images'}/{{image_id}}?token={{token}}"
    if with_demo:
        links["demo"] = str(base / "demo")
    body = {"name": "image-gateway", "version": _VERSION, "links": links}
    headers = {"Cache-Control": "no-store"}
    if with_demo:
        headers["Vary"] = "Accept"
    return web.Response(
        body=json.dumps(body).encode(), content_type="application/json", headers=headers
    )


def _prefers_html(accept: str | None) -> bool:
    """HTML named, and at least as welcome as JSON (a browser's `Accept`)."""
    qualities = media_qualities(accept)
    html = qualities.get("text/html", 0.0)
    return html > 0 and html >= qualities.get("application/json", 0.0)


async def status(request: web.Request) -> web.Response:
    """`GET /status`: liveness plus a catalog round trip."""
    settings = request.app[SETTINGS]
    catalog = await request.app[CATALOG].fresh()
    await catalog.store.check()
    body = {
        "data": {
            "type": "status",
            "id": "gateway",
            "attributes": {
                "status": "ok",
                "delivery": settings.upstream.delivery,
                # Changes this process has seen, and the store's own revision:
                # both move whenever the catalog changes.
                "catalogRevision": [catalog.generation, catalog.store.revision],
            },
        }
    }
    return web.Response(
        body=json.dumps(body).encode(),
        content_type=JSONAPI,
        headers={"Cache-Control": "no-store"},
    )


async def openapi(request: web.Request) -> web.Response:
    """`GET /openapi.json`: the API description, kept in step with the routes by a test."""
    return web.Response(body=_OPENAPI, content_type="application/json")


async def livez(request: web.Request) -> web.Response:
    """`GET /livez`: the process answers (its event loop turns)."""
    return _probe(200, "live")


async def readyz(request: web.Request) -> web.Response:
    """`GET /readyz`: worth sending traffic to: the catalog answers and the
    process is not draining for a shutdown."""
    if request.app[LIFECYCLE].draining:
        return _probe(503, "draining")
    try:
        await request.app[CATALOG].store.check()
    except Exception:  # noqa: BLE001 - any failure of the catalog means not ready
        return _probe(503, "catalog unreachable")
    return _probe(200, "ready")


def _probe(status: int, state: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps({"status": state}).encode(),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics`: every worker's figures in Prometheus's text format, at
    most a second old."""
    app = request.app

    async def build() -> bytes:
        figures = app[METRICS]
        # With the catalog's database unreachable, the last counts stand: the
        # process's own figures matter most during an outage.
        with contextlib.suppress(CatalogUnavailableError):
            figures.ingests = await app[CATALOG].store.ingest_counts()
        # Its own figures published first (`Metrics.published`), then the
        # sibling workers' too, read from their files in a thread.
        await asyncio.to_thread(figures.gather, await figures.published())
        registry = CollectorRegistry(auto_describe=False)
        registry.register(figures)
        if figures.worker is None:  # one process; else each worker's, labelled
            registry.register(ProcessCollector(registry=None))
        return generate_latest(registry)

    return web.Response(
        body=await app[EXPOSITION].text(build),
        headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
    )
