"""The demo: an issuer and a few generated originals for the playground (`/demo`).

Seeded on start-up with `serve --demo` (or GATEWAY_DEMO=true), idempotently:
the same ids every time, so URLs handed out keep working across restarts.
With an uploader (Cloudinary, or the local stand-in) each original is uploaded
once, as the API would: a demo page of 302s to assets that do not exist is
worse than no start at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gateway.catalog import CatalogError, CatalogStore
from gateway.cloudinary import Uploader
from gateway.config import Settings
from gateway.delivery.links import signed_delivery_url
from gateway.originals.ingest import add_original
from gateway.originals.store import OriginalStore
from signing import Issuer
from transforms.cloudinary import CloudinaryAsset
from transforms.render.pillow import sample_image

__all__ = ["DEMO_ISSUER", "Demo", "DemoImage", "mode", "seed_demo"]

DEMO_ISSUER: Final = "de300000-0000-4000-8000-000000000001"
# Generated originals: 1200x800 gradients between two colours.
_IMAGES: Final = (
    ("de300000-0000-4000-8000-0000000000a1", "sunrise", ((255, 183, 77), (183, 28, 28))),
    ("de300000-0000-4000-8000-0000000000a2", "meadow", ((174, 213, 129), (27, 94, 32))),
    ("de300000-0000-4000-8000-0000000000a3", "ocean", ((129, 212, 250), (13, 71, 161))),
)  # fmt: skip
ORIGINAL_SIZE: Final = (1200, 800)
# Where the demo originals go on Cloudinary (or the local stand-in).
FOLDER: Final = "image-gateway-demo"
TTL: Final = 3600
# What the playground shows each original as, in its picker.
THUMBNAIL: Final = ({"crop": "fill", "width": 240, "height": 160},)


@dataclass(frozen=True, slots=True)
class DemoImage:
    id: str
    name: str

    @property
    def public_id(self) -> str:
        return f"{FOLDER}/{self.name}"


@dataclass(frozen=True, slots=True)
class Demo:
    issuer: Issuer
    images: tuple[DemoImage, ...]

    def owns(self, image_id: str) -> bool:
        return any(image.id == image_id for image in self.images)

    def asset(self, image_id: str, settings: Settings) -> CloudinaryAsset:
        """Where a demo image is, or would be once uploaded, on Cloudinary."""
        (image,) = (i for i in self.images if i.id == image_id)
        return CloudinaryAsset(
            public_id=image.public_id,
            format="jpg",
            delivery_type=settings.upstream.delivery_type,
        )

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
        return url


def mode(settings: Settings) -> str:
    """How this gateway answers a signed URL, in words for the demo page."""
    upstream = settings.upstream
    if upstream.delivery == "render":
        return (
            "local rendering. The gateway draws each picture itself with Pillow, "
            "following Cloudinary's geometry; the chain shown is what it would "
            "send to Cloudinary"
        )
    if upstream.cdn == "local" or upstream.cloudinary is None:
        return (
            "302 to the local stand-in of Cloudinary's delivery endpoint "
            "(GATEWAY_CDN=local, under /cdn), which checks the URL's signature "
            "and renders the picture, as Cloudinary would"
        )
    return (
        f"302 to Cloudinary (cloud {upstream.cloudinary.cloud_name}). Each picture "
        "URL answers 302 to the signed Cloudinary URL shown, and the browser "
        "fetches the picture there"
    )


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
        try:
            issuer, _ = await catalog.add_issuer(
                issuer_id=DEMO_ISSUER, name="demo", kid="demo"
            )
        except CatalogError:
            # Another replica, started at the same moment, seeded it first.
            if (issuer := await catalog.issuer(DEMO_ISSUER)) is None:
                raise
    elif issuer.signing_key is None:
        await catalog.add_key(DEMO_ISSUER)
        issuer = await catalog.issuer(DEMO_ISSUER)
        assert issuer is not None  # noqa: S101 - just read
    delivery_type = settings.upstream.delivery_type
    # The cloud the demo's originals were last uploaded to: a data dir tried
    # with the local CDN, then with Cloudinary, uploads them again.
    marker = settings.data_dir / "demo-cloud"
    uploaded_to = marker.read_text() if marker.exists() else None
    images = tuple(DemoImage(image_id, name) for image_id, name, _ in _IMAGES)
    for image, (_, _, colors) in zip(images, _IMAGES, strict=True):
        record = await catalog.image(image.id)
        if record is not None and (
            uploader is None
            or (record.cloudinary is not None and uploaded_to == uploader.cloud_name)
        ):
            continue
        data = sample_image(*ORIGINAL_SIZE, colors)
        asset = None
        if uploader is not None:
            uploaded = await uploader.upload(
                data, public_id=image.public_id, delivery_type=delivery_type
            )
            asset = uploaded.asset
        if record is None:
            try:
                await add_original(
                    catalog,
                    store,
                    settings.limits,
                    issuer_id=DEMO_ISSUER,
                    image_id=image.id,
                    data=data,
                    filename=f"{image.name}.jpg",
                    cloudinary=asset,
                )
            except CatalogError:
                if await catalog.image(image.id) is None:
                    raise  # else seeded by another replica meanwhile
        else:  # seeded before, without this CDN: now it has its asset there
            await catalog.finish_ingest(
                image.id,
                original=record.original,
                cloudinary=asset,
                filename=record.original_filename,
            )
    if uploader is not None and uploaded_to != uploader.cloud_name:
        marker.write_text(uploader.cloud_name)
    return Demo(issuer, images)
