"""Errors raised while parsing, compiling or rendering a transformation.

TransformError
├── InvalidTransformError
│   ├── TooManyStepsError
│   └── TooManyOverlaysError
├── LimitExceededError
│   └── OutputTooLargeError
└── SourceImageError
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "InvalidTransformError",
    "LimitExceededError",
    "OutputTooLargeError",
    "SourceImageError",
    "TooManyOverlaysError",
    "TooManyStepsError",
    "TransformError",
    "UnsupportedFormatError",
]


class TransformError(Exception):
    """Root of every transformation error; `detail` is safe to show to the caller."""

    code: ClassVar[str] = "transform_error"
    title: ClassVar[str] = "Transformation error"

    def __init__(
        self, detail: str, *, pointer: str | None = None, parameter: str | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter


class InvalidTransformError(TransformError):
    code = "transform_invalid"
    title = "Invalid transformation"


class TooManyStepsError(InvalidTransformError):
    code = "transform_too_many_steps"
    title = "Too many transformation steps"


class TooManyOverlaysError(InvalidTransformError):
    code = "transform_too_many_overlays"
    title = "Too many overlays"


class LimitExceededError(TransformError):
    code = "image_limit_exceeded"
    title = "Image too large"


class OutputTooLargeError(LimitExceededError):
    """The planned output is over budget: the token asks too much, so 400."""

    code = "output_too_large"
    title = "Output image too large"


class SourceImageError(TransformError):
    code = "source_image_invalid"
    title = "Unusable source image"


class UnsupportedFormatError(SourceImageError):
    """The bytes are not one of the allowed formats (whatever the name says)."""

    code = "source_format_unsupported"
    title = "Unsupported image format"
