"""The one route table."""

from __future__ import annotations

from aiohttp import web

from gateway import handlers

__all__ = ["setup_routes"]


def setup_routes(app: web.Application) -> None:
    # web.get also answers HEAD with the same headers and no body.
    app.add_routes(
        [
            web.get("/images/{image_id}", handlers.deliver, name="deliver"),
            web.get("/status", handlers.status, name="status"),
            web.get("/openapi.json", handlers.openapi, name="openapi"),
            web.get("/demo", handlers.demo, name="demo"),
        ]
    )
