"""Seed 004's ids, Cloudinary assets and tiling: one place for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from gateway.catalog import CatalogStore
from transforms.cloudinary import CloudinaryAsset

__all__ = [
    "ASSETS",
    "CLOUD_NAME",
    "IMAGE",
    "ISSUER",
    "LAYER_1",
    "LAYER_2",
    "add_assets",
    "tiling",
]

ISSUER: Final = "6b6fdb7b-65cb-4acf-97b9-d25eff795348"
IMAGE: Final = "133398b5-c4e1-4488-bbe1-81afd70546ae"
LAYER_1: Final = "b48fff71-a649-41dc-8f35-67229b3fd584"
LAYER_2: Final = "372083d9-8179-4161-af8c-6cbfecd9219a"
CLOUD_NAME: Final = "sadaasdasd"
# Where seed 004's images live on Cloudinary (its signed URL names them).
ASSETS: Final[Mapping[str, CloudinaryAsset]] = {
    LAYER_1: CloudinaryAsset(public_id="3bc669b21d8e"),
    LAYER_2: CloudinaryAsset(public_id="e199b75435bf"),
    IMAGE: CloudinaryAsset(public_id="f7332109c6c5", version=123123, format="jpg"),
}


def tiling(
    width: int = 800, x: int = 0, layers: tuple[str, str] = (LAYER_1, LAYER_2)
) -> list[dict[str, object]]:
    """Three images side by side; `tiling()` is the seed's own claim.

    Under Cloudinary's geometry the i-th extra tile of width W sits at
    x = (i + 1) * W / 2; `x` shifts both overlays (a distinct claim per value).
    """
    first, second = layers
    return [
        {"crop": "fit", "width": width},
        {"overlay": first, "crop": "fit", "width": width, "x": width + x},
        {"overlay": second, "crop": "fit", "width": width, "x": width * 3 // 2 + x},
    ]


async def add_assets(catalog: CatalogStore, issuer_id: str = ISSUER) -> None:
    """Register the seed's three images as Cloudinary assets of `issuer_id`."""
    for image_id, asset in ASSETS.items():
        await catalog.add_image(
            issuer_id=issuer_id, image_id=image_id, cloudinary=asset
        )
