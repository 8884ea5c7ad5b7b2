"""Cloudinary's APIs other than delivery URLs: the Upload API client."""

from gateway.cloudinary.admin import (
    API_BASE,
    CloudinaryUploader,
    Uploaded,
    signed_params,
)

__all__ = ["API_BASE", "CloudinaryUploader", "Uploaded", "signed_params"]
