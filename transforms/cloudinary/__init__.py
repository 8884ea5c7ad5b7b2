"""Cloudinary: where an image lives (`account`), and its delivery URLs (`compile`).

This package's names are the account types only. `transforms.cloudinary.compile`
loads the SDK, which reads (and may refuse) `CLOUDINARY_URL` the moment it is
imported: its users import it explicitly, when they need it.
"""

from transforms.cloudinary.account import (
    DELIVERY_TYPES,
    FORMATS,
    PUBLIC_ID,
    CloudinaryAccount,
    CloudinaryAsset,
)

__all__ = [
    "DELIVERY_TYPES",
    "FORMATS",
    "PUBLIC_ID",
    "CloudinaryAccount",
    "CloudinaryAsset",
]
