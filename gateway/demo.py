"""The demo: an issuer and a few generated originals, and a page that shows them.

Seeded on start-up with `serve --demo` (or GATEWAY_DEMO=true), idempotently:
the same ids every time, so printed URLs keep working across restarts. With an
uploader (Cloudinary, or the local stand-in) each original is uploaded once,
as the API would: a demo page of 302s to assets that do not exist is worse
than no start at all. The page matters because the default base chain's
`fl_attachment` makes a browser download an image opened directly; inside
`<img>` it simply shows.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Final

from gateway.catalog import CatalogStore
from gateway.cloudinary import Uploader
from gateway.config import Settings
from gateway.delivery.links import signed_delivery_url
from gateway.originals.ingest import add_original
from gateway.originals.store import OriginalStore
from signing import Issuer
from transforms.render.pillow import sample_image

__all__ = ["DEMO_ISSUER", "Demo", "mode", "seed_demo"]

DEMO_ISSUER: Final = "de300000-0000-4000-8000-000000000001"
_IMAGES: Final = (
    (
        "de300000-0000-4000-8000-0000000000a1",
        "sunrise",
        ((255, 183, 77), (183, 28, 28)),
    ),
    ("de300000-0000-4000-8000-0000000000a2", "meadow", ((174, 213, 129), (27, 94, 32))),
    ("de300000-0000-4000-8000-0000000000a3", "ocean", ((129, 212, 250), (13, 71, 161))),
)
_TTL: Final = 3600


@dataclass(frozen=True, slots=True)
class Demo:
    issuer: Issuer
    images: tuple[str, ...]

    def examples(self) -> list[tuple[str, str, list[dict[str, object]]]]:
        first, second, third = self.images
        return [
            (
                "Three originals tiled side by side (seed 004's token)",
                first,
                [
                    {"crop": "fit", "width": 400},
                    {"overlay": second, "crop": "fit", "width": 400, "x": 400},
                    {"overlay": third, "crop": "fit", "width": 400, "x": 600},
                ],
            ),
            ("A 300x300 fill, cropped at the centre", second, [{"crop": "fill", "width": 300, "height": 300}]),
            (
                "Padded to 400x200 on black, in grayscale",
                third,
                [
                    {"crop": "pad", "width": 400, "height": 200, "background": "#000000"},
                    {"effect": "grayscale"},
                ],
            ),
            (
                "A half-transparent badge in the bottom-right corner",
                first,
                [
                    {"crop": "fill", "width": 400, "height": 260},
                    {"overlay": third, "crop": "fill", "width": 100, "height": 100,
                     "gravity": "south_east", "x": 12, "y": 12, "opacity": 70},
                ],
            ),
        ]  # fmt: skip

    def url(
        self, settings: Settings, image: str, steps: list[dict[str, object]]
    ) -> str:
        url = signed_delivery_url(
            settings.base_url, self.issuer, image, steps, ttl=_TTL
        )
        if url is None:  # pragma: no cover - seed_demo gives the issuer a key
            raise RuntimeError("the demo issuer has no signing key")
        return str(url)

    def page(self, settings: Settings) -> str:
        figures = "\n".join(
            f'<figure><img src="{html.escape(self.url(settings, image, steps))}" alt="">'
            f"<figcaption>{html.escape(caption)}<br><code>{html.escape(json.dumps(steps))}"
            "</code></figcaption></figure>"
            for caption, image, steps in self.examples()
        )
        return (
            "<!doctype html><html lang=en><meta charset=utf-8>"
            "<title>image-gateway demo</title><style>body{font:15px system-ui;margin:2em;"
            "max-width:60em}img{max-width:100%;border:1px solid #ccc}figure{margin:0 0 2em}"
            "code{font-size:12px;color:#555}</style><h1>image-gateway demo</h1>"
            "<p>Each picture is a signed URL: a token (valid one hour) naming the "
            "transformations allowed on a demo image.</p>"
            f'<p id="mode">Mode: {html.escape(mode(settings))}.</p>'
            f"{figures}</html>"
        )


def mode(settings: Settings) -> str:
    """How this gateway answers a signed URL, in words for the demo page."""
    upstream = settings.upstream
    if upstream.delivery == "render":
        return "rendered by this gateway (local rendering, no CDN)"
    if upstream.cdn == "local" or upstream.cloudinary is None:
        return (
            "302 to the local stand-in of Cloudinary's delivery endpoint "
            "(GATEWAY_CDN=local, under /cdn), which renders the picture"
        )
    return f"302 to Cloudinary (cloud {upstream.cloudinary.cloud_name})"


async def seed_demo(
    catalog: CatalogStore,
    store: OriginalStore,
    settings: Settings,
    uploader: Uploader | None = None,
) -> Demo:
    """The demo issuer and images, each original uploaded once when there is an
    uploader; its failure (`ApiError`) is the caller's to report."""
    issuer = await catalog.issuer(DEMO_ISSUER)
    if issuer is None:
        issuer, _ = await catalog.add_issuer(
            issuer_id=DEMO_ISSUER, name="demo", kid="demo"
        )
    elif issuer.signing_key is None:
        await catalog.add_key(DEMO_ISSUER)
        issuer = await catalog.issuer(DEMO_ISSUER)
        assert issuer is not None  # noqa: S101 - just read
    delivery_type = settings.upstream.delivery_type
    # The cloud the demo's originals were last uploaded to: a data dir tried
    # with the local CDN, then with Cloudinary, uploads them again.
    marker = settings.data_dir / "demo-cloud"
    uploaded_to = marker.read_text() if marker.exists() else None
    for image_id, name, colors in _IMAGES:
        record = await catalog.image(image_id)
        if record is not None and (
            uploader is None
            or (record.cloudinary is not None and uploaded_to == uploader.cloud_name)
        ):
            continue
        data = sample_image(1200, 800, colors)
        asset = None
        if uploader is not None:
            uploaded = await uploader.upload(
                data, public_id=image_id, delivery_type=delivery_type
            )
            asset = uploaded.asset
        if record is None:
            await add_original(
                catalog,
                store,
                settings.limits,
                issuer_id=DEMO_ISSUER,
                image_id=image_id,
                data=data,
                filename=f"{name}.jpg",
                cloudinary=asset,
            )
        else:  # seeded before, without this CDN: now it has its asset there
            await catalog.finish_ingest(
                image_id,
                original=record.original,
                cloudinary=asset,
                filename=record.original_filename,
            )
    if uploader is not None and uploaded_to != uploader.cloud_name:
        marker.write_text(uploader.cloud_name)
    return Demo(issuer, tuple(image_id for image_id, _, _ in _IMAGES))
