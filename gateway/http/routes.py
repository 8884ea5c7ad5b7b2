"""The one route table.

aiohttp composes the app's middlewares (request id, then errors) around
every handler, its own 404 and 405 answers included, so every response
carries a request id and every error is JSON:API.
"""

from __future__ import annotations

from aiohttp import web

from gateway.http import cdn, demo, iiif, images_v1, meta, pictures
from gateway.http.delivery import Delivery
from gateway.keys import SETTINGS

__all__ = ["setup_routes"]


def setup_routes(app: web.Application, delivery: Delivery) -> None:
    # One delivery mode per process, chosen once: no per-request branch.
    deliver = (
        delivery.redirect
        if app[SETTINGS].upstream.delivery == "redirect"
        else delivery.render
    )
    # web.get also answers HEAD with the same headers and no body.
    app.router.add_routes(
        [
            web.get("/images/{image_id}", deliver, name="deliver"),
            web.get("/", meta.index, name="index"),
            web.get("/status", meta.status, name="status"),
            web.get("/livez", meta.livez, name="livez"),
            web.get("/readyz", meta.readyz, name="readyz"),
            web.get("/metrics", meta.metrics, name="metrics"),
            web.get("/openapi.json", meta.openapi, name="openapi"),
            web.get(
                "/v3/images/{image_id}/{size}",
                pictures.sized_image,
                name="sized_image",
            ),
            web.options(
                "/v3/images/{image_id}/{size}",
                pictures.preflight,
                name="sized_image_preflight",
            ),
            web.get("/image/{name}", pictures.public_image, name="public_image"),
            web.options(
                "/image/{name}", pictures.preflight, name="public_image_preflight"
            ),
            # IIIF Image API 3.0: the image's UUID is the identifier.
            web.get("/iiif/3/{image_id}", iiif.base, name="iiif_base"),
            web.get("/iiif/3/{image_id}/info.json", iiif.info, name="iiif_info"),
            web.get(
                "/iiif/3/{image_id}/{region}/{size}/{rotation}/{quality}.{format}",
                iiif.image,
                name="iiif_image",
            ),
            web.options(
                "/iiif/3/{image_id}", iiif.preflight, name="iiif_base_preflight"
            ),
            web.options(
                "/iiif/3/{image_id}/info.json",
                iiif.preflight,
                name="iiif_info_preflight",
            ),
            web.options(
                "/iiif/3/{image_id}/{region}/{size}/{rotation}/{quality}.{format}",
                iiif.preflight,
                name="iiif_image_preflight",
            ),
            # The local stand-in for Cloudinary (GATEWAY_CDN=local; else 404).
            web.get(
                cdn.PREFIX + "/{cloud}/image/{type}/{tail:.+}", cdn.deliver, name="cdn"
            ),
            web.post("/v1/images", images_v1.create_image, name="create_image"),
            web.put("/v1/images", images_v1.create_image, name="put_image"),
            web.get("/v1/images", images_v1.list_images, name="list_images"),
            web.get("/v1/images/{image_id}", images_v1.get_image, name="get_image"),
            web.patch(
                "/v1/images/{image_id}", images_v1.patch_image, name="patch_image"
            ),
            web.delete(
                "/v1/images/{image_id}", images_v1.delete_image, name="delete_image"
            ),
        ]
    )
    if app[SETTINGS].server.demo:
        # Only with the demo: no token desk, not even a 404 handler, otherwise.
        app.router.add_routes(
            [
                web.get("/demo", demo.page, name="demo"),
                web.get("/demo/static/{name}", demo.static, name="demo_static"),
                web.post("/demo/token", demo.token, name="demo_token"),
            ]
        )
