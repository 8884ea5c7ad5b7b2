"""Cloudinary's APIs other than delivery URLs: the Upload API client, and the local stand-in."""

from gateway.cloudinary.admin import (
    CloudinaryUploader,
    Uploaded,
    Uploader,
    signed_params,
)
from gateway.cloudinary.standin import LOCAL_CLOUD, LocalCloud

__all__ = [
    "LOCAL_CLOUD",
    "CloudinaryUploader",
    "LocalCloud",
    "Uploaded",
    "Uploader",
    "signed_params",
]
