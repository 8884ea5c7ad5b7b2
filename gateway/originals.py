"""Ingest an original: decode it to learn what it is, store it, then record it."""

from __future__ import annotations

from gateway.catalog import Catalog, CatalogError, ImageRecord, Original
from gateway.storage import OriginalStore
from transforms import CloudinaryAsset, Limits
from transforms.compositor import probe

__all__ = ["add_original"]


def add_original(
    catalog: Catalog,
    store: OriginalStore,
    limits: Limits,
    *,
    issuer_id: str,
    data: bytes,
    filename: str | None = None,
    image_id: str | None = None,
    cloudinary: CloudinaryAsset | None = None,
) -> ImageRecord:
    """Raises `SourceImageError`/`LimitExceededError` for bad bytes, `CatalogError`.

    The media type, width and height come from the decoded image, never from
    the file name or a declared content type. Nothing is left behind on failure.
    """
    info = probe(data, limits)
    sha256 = store.put(data)
    try:
        return catalog.add_image(
            issuer_id=issuer_id,
            image_id=image_id,
            cloudinary=cloudinary,
            original=Original(
                sha256=sha256,
                media_type=info.media_type,
                file_size=len(data),
                width=info.width,
                height=info.height,
            ),
            original_filename=filename,
        )
    except CatalogError:
        if catalog.originals_in_use(sha256) == 0:
            store.remove(sha256)
        raise
