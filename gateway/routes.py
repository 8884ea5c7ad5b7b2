"""The one route table."""

from __future__ import annotations

from aiohttp import web

from gateway import api, handlers
from gateway.keys import SETTINGS

__all__ = ["setup_routes"]


def setup_routes(app: web.Application) -> None:
    # One delivery mode per process, chosen once: no per-request branch.
    deliver = (
        handlers.redirect if app[SETTINGS].delivery == "redirect" else handlers.render
    )
    # web.get also answers HEAD with the same headers and no body.
    app.add_routes(
        [
            web.get("/images/{image_id}", deliver, name="deliver"),
            web.get("/status", handlers.status, name="status"),
            web.get("/openapi.json", handlers.openapi, name="openapi"),
            web.get("/demo", handlers.demo, name="demo"),
            web.post("/v1/images", api.create_image, name="create_image"),
            web.put("/v1/images", api.create_image, name="put_image"),
            web.get("/v1/images", api.list_images, name="list_images"),
            web.get("/v1/images/{image_id}", api.get_image, name="get_image"),
            web.patch("/v1/images/{image_id}", api.patch_image, name="patch_image"),
            web.delete("/v1/images/{image_id}", api.delete_image, name="delete_image"),
        ]
    )
