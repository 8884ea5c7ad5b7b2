"""Ingest an original: decode it to learn what it is, store it, then record it."""

from __future__ import annotations

from gateway.catalog import Catalog, CatalogError, ImageRecord, Original
from gateway.storage import OriginalStore
from transforms import CloudinaryAsset, Limits
from transforms.compositor import probe

__all__ = ["add_original", "discard", "prepare_original"]


def prepare_original(store: OriginalStore, limits: Limits, data: bytes) -> Original:
    """Probe and store (thread-safe, CPU-bound: run it in the pool).

    Raises `SourceImageError`/`LimitExceededError`. The media type, width and
    height come from the decoded image, never a file name or declared type.
    """
    info = probe(data, limits)
    return Original(
        sha256=store.put(data),
        media_type=info.media_type,
        file_size=len(data),
        width=info.width,
        height=info.height,
    )


def discard(catalog: Catalog, store: OriginalStore, original: Original) -> None:
    """Remove a stored original no image refers to (after a failed registration)."""
    if catalog.originals_in_use(original.sha256) == 0:
        store.remove(original.sha256)


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
    """Probe, store and record in one go; nothing is left behind on failure."""
    original = prepare_original(store, limits, data)
    try:
        return catalog.add_image(
            issuer_id=issuer_id,
            image_id=image_id,
            cloudinary=cloudinary,
            original=original,
            original_filename=filename,
        )
    except CatalogError:
        discard(catalog, store, original)
        raise
