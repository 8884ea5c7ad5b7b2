"""Where images live on Cloudinary, and the account that signs their URLs (no SDK)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "DELIVERY_TYPES",
    "FORMATS",
    "PUBLIC_ID",
    "CloudinaryAccount",
    "CloudinaryAsset",
]

DELIVERY_TYPES: Final = frozenset({"upload", "authenticated", "private"})
PUBLIC_ID: Final = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")
FORMATS: Final = frozenset({"jpg", "jpeg", "png", "webp", "gif", "avif"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudinaryAccount:
    cloud_name: str
    api_key: str
    api_secret: str = field(repr=False)
    secure_distribution: str | None = None
    private_cdn: bool = False
    # Where the Upload API is (the SDK's `upload_prefix`); None: Cloudinary's.
    upload_prefix: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudinaryAsset:
    """Where an image lives on Cloudinary."""

    public_id: str
    version: int | None = None
    format: str | None = None
    delivery_type: str = "authenticated"

    def __post_init__(self) -> None:
        if len(self.public_id) > 255 or not PUBLIC_ID.fullmatch(self.public_id):
            raise ValueError(f"invalid public id {self.public_id!r}")
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"format must be one of {sorted(FORMATS)}")
        if self.delivery_type not in DELIVERY_TYPES:
            raise ValueError(f"delivery type must be one of {sorted(DELIVERY_TYPES)}")
        if self.version is not None and self.version < 1:
            raise ValueError("version must be positive")
