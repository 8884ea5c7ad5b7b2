"""The transformation model and its compilers (Cloudinary URL, Pillow composite)."""

from transforms.cloudinary import (
    DEFAULT_BASE_CHAIN,
    CloudinaryAccount,
    CloudinaryAsset,
    parse_base_chain,
    to_cloudinary_url,
)
from transforms.errors import (
    InvalidTransformError,
    LimitExceededError,
    OutputTooLargeError,
    SourceImageError,
    TooManyOverlaysError,
    TooManyStepsError,
    TransformError,
)
from transforms.limits import Limits
from transforms.model import (
    Adjust,
    Color,
    CropMode,
    Effect,
    Gravity,
    Overlay,
    Step,
    Transformation,
    normalise_image_id,
)

__all__ = [
    "DEFAULT_BASE_CHAIN",
    "Adjust",
    "CloudinaryAccount",
    "CloudinaryAsset",
    "Color",
    "CropMode",
    "Effect",
    "Gravity",
    "InvalidTransformError",
    "LimitExceededError",
    "Limits",
    "OutputTooLargeError",
    "Overlay",
    "SourceImageError",
    "Step",
    "TooManyOverlaysError",
    "TooManyStepsError",
    "TransformError",
    "Transformation",
    "normalise_image_id",
    "parse_base_chain",
    "to_cloudinary_url",
]
