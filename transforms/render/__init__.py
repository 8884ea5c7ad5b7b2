"""Render a chain locally, following Cloudinary's geometry.

This package's names plan a render from sizes alone and do not load Pillow;
decoding, composing and encoding live in `transforms.render.pillow`.
"""

from transforms.render.chain import RenderChain
from transforms.render.plan import (
    Dimensions,
    Encoder,
    Plan,
    Surface,
    plan,
    walk,
)

__all__ = [
    "Dimensions",
    "Encoder",
    "Plan",
    "RenderChain",
    "Surface",
    "plan",
    "walk",
]
