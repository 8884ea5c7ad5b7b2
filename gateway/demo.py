"""The demo: an issuer and a few generated originals for the playground (`/demo`).

Seeded on start-up with `serve --demo` (or GATEWAY_DEMO=true), idempotently:
the same ids every time, so URLs handed out keep working across restarts.
Each image has its local original and a Cloudinary asset name, so the same
demo works whether the gateway renders, redirects to Cloudinary or to its
local stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gateway.catalog import CatalogStore
from gateway.config import Settings
from gateway.delivery.links import signed_delivery_url
from gateway.originals.ingest import add_original
from gateway.originals.store import OriginalStore
from signing import Issuer
from transforms.cloudinary import CloudinaryAsset
from transforms.render.pillow import sample_image

__all__ = ["DEMO_ISSUER", "Demo", "DemoImage", "seed_demo"]

DEMO_ISSUER: Final = "de300000-0000-4000-8000-000000000001"
# Generated originals: 1200x800 gradients between two colours.
_IMAGES: Final = (
    ("de300000-0000-4000-8000-0000000000a1", "sunrise", ((255, 183, 77), (183, 28, 28))),
    ("de300000-0000-4000-8000-0000000000a2", "meadow", ((174, 213, 129), (27, 94, 32))),
    ("de300000-0000-4000-8000-0000000000a3", "ocean", ((129, 212, 250), (13, 71, 161))),
)  # fmt: skip
ORIGINAL_SIZE: Final = (1200, 800)
# Where the demo originals live on Cloudinary (or the local stand-in).
_FOLDER: Final = "image-gateway-demo"
TTL: Final = 3600
# What the playground shows each original as, in its picker.
THUMBNAIL: Final = ({"crop": "fill", "width": 240, "height": 160},)


@dataclass(frozen=True, slots=True)
class DemoImage:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Demo:
    issuer: Issuer
    images: tuple[DemoImage, ...]

    def owns(self, image_id: str) -> bool:
        return any(image.id == image_id for image in self.images)

    def url(
        self, settings: Settings, image: str, steps: list[dict[str, object]]
    ) -> str:
        """A signed delivery URL for one demo image, bound to it, valid an hour."""
        url = signed_delivery_url(
            settings.base_url,
            self.issuer,
            image,
            steps,
            ttl=TTL,
            audience=settings.tokens.audience,
        )
        if url is None:  # pragma: no cover - seed_demo gives the issuer a key
            raise RuntimeError("the demo issuer has no signing key")
        return str(url)


async def seed_demo(
    catalog: CatalogStore, store: OriginalStore, settings: Settings
) -> Demo:
    issuer = await catalog.issuer(DEMO_ISSUER)
    if issuer is None:
        issuer, _ = await catalog.add_issuer(
            issuer_id=DEMO_ISSUER, name="demo", kid="demo"
        )
    elif issuer.signing_key is None:
        await catalog.add_key(DEMO_ISSUER)
        issuer = await catalog.issuer(DEMO_ISSUER)
        assert issuer is not None  # noqa: S101 - just read
    for image_id, name, colors in _IMAGES:
        if await catalog.image(image_id) is None:
            await add_original(
                catalog,
                store,
                settings.limits,
                issuer_id=DEMO_ISSUER,
                image_id=image_id,
                data=sample_image(*ORIGINAL_SIZE, colors),
                filename=f"{name}.jpg",
                cloudinary=CloudinaryAsset(
                    public_id=f"{_FOLDER}/{name}",
                    version=1,
                    format="jpg",
                    delivery_type=settings.upstream.delivery_type,
                ),
            )
    return Demo(
        issuer, tuple(DemoImage(image_id, name) for image_id, name, _ in _IMAGES)
    )
