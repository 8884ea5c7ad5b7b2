"""Compile a transformation into a signed Cloudinary delivery URL (loads the SDK)."""

from transforms.cloudinary.account import (
    DELIVERY_TYPES,
    FORMATS,
    PUBLIC_ID,
    CloudinaryAccount,
    CloudinaryAsset,
)
from transforms.cloudinary.compile import to_cloudinary_url

__all__ = [
    "DELIVERY_TYPES",
    "FORMATS",
    "PUBLIC_ID",
    "CloudinaryAccount",
    "CloudinaryAsset",
    "to_cloudinary_url",
]
