"""Bounds on what a transformation may ask for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_SIDE", "Limits"]

# The largest side or offset any limit may name: a JPEG's sides stop short of
# it, every other format's at it or before.
MAX_SIDE: Final = 65_535


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_size: int = 4096  # width and height of one step, in pixels
    max_offset: int = 32768  # |x| and |y| of a placement, in pixels
    max_steps: int = 16
    max_overlays: int = 8
    max_source_pixels: int = 50_000_000
    max_output_pixels: int = 25_000_000
