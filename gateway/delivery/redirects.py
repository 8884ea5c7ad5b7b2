"""The 302 to Cloudinary: a signed URL with seed 004's exact headers and body."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.catalog import ImageRecord
from gateway.delivery.headers import NO_CACHE_HEADERS, SECURITY_HEADERS, redirect_body
from gateway.errors import ImageNotFoundError
from transforms import Transformation
from transforms.cloudinary import CloudinaryAccount, CloudinaryAsset

__all__ = ["Redirect", "compile_redirect", "signed_url"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect:
    issuer: str  # whose images these are (for the access log)
    location: str
    # Built once and copied into each response: copying a multidict is cheaper
    # than building one from a dict on every request.
    headers: CIMultiDictProxy[str]
    body: bytes


def compile_redirect(
    issuer: str,
    transformation: Transformation,
    image: ImageRecord,
    overlays: Mapping[str, ImageRecord],
    *,
    account: CloudinaryAccount,
    base_chain: tuple[str, ...],
) -> Redirect:
    """The 302 for an image and the overlays its transformation names."""
    location = signed_url(
        transformation, image, overlays, account=account, base_chain=base_chain
    )
    headers = CIMultiDict(
        {
            **NO_CACHE_HEADERS,
            "Location": location,
            "Content-Type": "text/html; charset=utf-8",
            **SECURITY_HEADERS,
        }
    )
    return Redirect(
        issuer=issuer,
        location=location,
        headers=CIMultiDictProxy(headers),
        body=redirect_body(location),
    )


def signed_url(
    transformation: Transformation,
    image: ImageRecord,
    overlays: Mapping[str, ImageRecord],
    *,
    account: CloudinaryAccount,
    base_chain: tuple[str, ...],
    extension: str | None = None,
) -> str:
    """The signed Cloudinary URL of a chain; `extension` overrides the asset's format."""
    # Imported here, not with this module: the SDK reads CLOUDINARY_URL when
    # imported, and refuses a malformed one with a traceback; by the time a
    # redirect is compiled, `Settings` has checked it (one line, exit 2).
    from transforms.cloudinary.compile import to_cloudinary_url

    asset = _asset(image, None)
    if extension is not None:
        asset = dataclasses.replace(asset, format=extension)
    return to_cloudinary_url(
        transformation,
        asset=asset,
        overlays={
            layer_id: _asset(overlays[layer_id], f"/transformations/{index}/overlay")
            for layer_id, index in transformation.overlay_steps.items()
        },
        account=account,
        base_chain=base_chain,
    )


def _asset(record: ImageRecord, pointer: str | None) -> CloudinaryAsset:
    if record.cloudinary is None:
        raise ImageNotFoundError.unusable("the image is not on Cloudinary", pointer)
    return record.cloudinary
