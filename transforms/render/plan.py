"""The one geometry walker that plans and composes a chain, and the plan it makes.

The rules are those of `docs/geometry.md` (R1-R24); comments cite
them. `walk()` is written against `Surface`, a canvas with a logical size and the
few pixel operations the rules need. Two implementations run it, so that the
plan and the picture can never disagree:

- `plan()` walks an outline (sizes only): it enforces the output pixel budget,
  and the longest side the output's format holds, before any pixel is
  touched, and finds, for each source, the size it is first
  needed at (so big JPEGs can be decoded at reduced scale);
- `transforms.render.pillow.compose()` walks Pillow images.

This module does not import Pillow, so planning does not load it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol, Self, TypeAlias, TypeVar

from transforms.errors import OutputTooLargeError
from transforms.limits import Limits
from transforms.model import (
    Adjust,
    Bitonal,
    Crop,
    Edit,
    Fill,
    Fit,
    Gravity,
    Grayscale,
    LFill,
    Limit,
    LPad,
    Mirror,
    Negate,
    Opacity,
    Overlay,
    Pad,
    Placement,
    Resize,
    Rotate,
    Scale,
    Size,
    Thumb,
)
from transforms.render.chain import RenderChain

__all__ = [
    "Dimensions",
    "Encoder",
    "Plan",
    "Surface",
    "plan",
    "turned_size",
    "walk",
]

Dimensions: TypeAlias = tuple[int, int]
RGBA: TypeAlias = tuple[int, int, int, int]
WHITE: Final[RGBA] = (255, 255, 255, 255)
CLEAR: Final[RGBA] = (0, 0, 0, 0)


class Surface(Protocol):
    """A canvas as the walker sees it: a logical size and the pixel operations.

    Operations return a new surface. `resized` may be lazy; every other
    operation needs the pixels at the current logical size.
    """

    @property
    def size(self) -> Dimensions: ...

    def resized(self, size: Dimensions) -> Self: ...

    def cut(self, region: Dimensions, at: Dimensions) -> Self: ...

    def padded(self, size: Dimensions, at: Dimensions, color: RGBA) -> Self: ...

    def turned(self, degrees: int) -> Self:
        """Turned clockwise by 1-359 degrees, grown to hold the whole image."""
        ...

    def mirrored(self) -> Self:
        """Flipped left to right."""
        ...

    def grayscale(self) -> Self: ...

    def negated(self) -> Self: ...

    def bitonal(self) -> Self:
        """Every pixel black or white, alpha kept."""
        ...

    def faded(self, percent: int) -> Self: ...

    def placed(
        self, layer: Self, size: Dimensions, at: Dimensions, layer_at: Dimensions
    ) -> Self:
        """This surface at `at` on a transparent `size` canvas, `layer` over it."""
        ...


S = TypeVar("S", bound=Surface)


def walk(
    chain: RenderChain,
    base: S,
    layer: Callable[[str], S],
    limits: Limits,
    *,
    alpha_output: bool,
    trace: Callable[[Dimensions], None] | None = None,
) -> S:
    """R1: apply the steps left to right; refuse any step that grows past budget.

    `trace` is told the canvas size after each step.
    """
    for index, step in enumerate(chain.steps):
        # A fill's cover (see `_fill`) is held to the source budget: it is as
        # much memory as the largest source decoded.
        cover = functools.partial(
            _check, budget=limits.max_source_pixels, chain=chain, index=index
        )
        match step:
            case Adjust(resize=resize, edits=edits):
                base = _resize(base, resize, alpha_output, cover)
                _check(base.size, limits.max_output_pixels, chain, index)
                base = _edit(base, edits)
            case Overlay(image=image, resize=resize, edits=edits, placement=placement):
                # R12: the component's sizing and edits apply to the overlay.
                anchored = _anchored(resize, placement)
                top = _resize(layer(image), anchored, alpha_output, cover)
                _check(top.size, limits.max_output_pixels, chain, index)
                base = _place(base, _edit(top, edits), placement)
        _check(base.size, limits.max_output_pixels, chain, index)
        if trace is not None:
            trace(base.size)
    return base


def _check(size: Dimensions, budget: int, chain: RenderChain, index: int) -> None:
    if size[0] * size[1] <= budget:
        return
    made = f"makes a {size[0]}x{size[1]} image; at most {budget} pixels are rendered"
    raise _refusal(chain, index, made)


def _refusal(chain: RenderChain, index: int, made: str) -> OutputTooLargeError:
    """The refusal of step `index`, named as the token's step or the base chain's."""
    if index < chain.token_start:
        return OutputTooLargeError(
            f"base chain step {index} {made}", parameter="base_chain"
        )
    own = index - chain.token_start
    return OutputTooLargeError(f"step {own} {made}", pointer=f"/transformations/{own}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Encoder:
    """An output format, as far as a plan needs it: the longest side it writes."""

    name: str  # as a refusal names it: "JPEG", "WebP"
    max_side: int


def _check_sides(
    sizes: Sequence[Dimensions], encoder: Encoder, chain: RenderChain
) -> None:
    """The output's sides against what its format holds.

    Within the pixel budget a side can be far longer than an encoder writes
    (100x200000 is 20 MP; a JPEG is at most 65500 pixels a side). `sizes` is
    the canvas before the first step, then after each: the step named is the
    one that gave the side its final length.
    """
    size = sizes[-1]
    for axis in (0, 1):
        if size[axis] > encoder.max_side:
            break
    else:
        return
    holds = f"{encoder.name} holds at most {encoder.max_side} pixels a side"
    made = f"makes a {size[0]}x{size[1]} image; {holds}"
    for index in reversed(range(len(sizes) - 1)):
        if sizes[index][axis] != sizes[index + 1][axis]:
            raise _refusal(chain, index, made)
    raise OutputTooLargeError(f"the image is {size[0]}x{size[1]} pixels; {holds}")


def _anchored(resize: Resize | None, placement: Placement) -> Resize | None:
    """An overlay's own fill, pad or crop is anchored by its placement (R12)."""
    g, x, y = placement.gravity, placement.x, placement.y
    match resize:
        case Fill() | LFill() | Thumb() | Pad() | LPad():
            return dataclasses.replace(resize, gravity=g)
        case Crop():
            return dataclasses.replace(resize, gravity=g, x=x, y=y)
        case None | Size() | Scale() | Fit() | Limit():
            return resize


class _Scale(NamedTuple):
    """A scale as a ratio of whole pixels, `num / den`, so that R11 rounds exactly.

    In binary floating point a half can fall short of itself: 27 x (13 / 6)
    is 58.49999..., where 27 x 13 / 6 is 58.5, which rounds up to 59.
    """

    num: int
    den: int

    def side(self, length: int) -> int:
        """R11: `length` scaled, rounded half up, never below one pixel."""
        return max(1, (2 * length * self.num + self.den) // (2 * self.den))

    def times(self, size: Dimensions) -> Dimensions:
        return self.side(size[0]), self.side(size[1])

    def below_one(self) -> bool:
        return self.num < self.den

    def at_most_one(self) -> _Scale:
        return self if self.below_one() else _ONE


_ONE: Final = _Scale(1, 1)


def _fit_and_fill(box: Dimensions, size: Dimensions) -> tuple[_Scale, _Scale]:
    """R4's min(w/W0, h/H0) and R7's max, compared exactly."""
    across, down = _Scale(box[0], size[0]), _Scale(box[1], size[1])
    if across.num * down.den <= down.num * across.den:
        return across, down
    return down, across


def _resize(
    s: S, resize: Resize | None, alpha_output: bool, cover: Callable[[Dimensions], None]
) -> S:
    """R3-R10 on one surface (the canvas, or an overlay before its placement)."""
    if resize is None:
        return s
    if isinstance(resize, Crop):
        return _crop(s, resize)
    w, h = resize.width, resize.height
    if w is None or h is None:
        # R3, R5, R6: one dimension keeps the aspect ratio in every mode; the
        # limiting modes never upscale, compared on that dimension only.
        if w is not None:
            scale = _Scale(w, s.size[0])
        else:
            scale = _Scale(h or s.size[1], s.size[1])
        if isinstance(resize, Limit | LFill | LPad) and not scale.below_one():
            return s
        return s.resized(scale.times(s.size))
    fit, fill = _fit_and_fill((w, h), s.size)
    match resize:
        case Size() | Scale():
            return s.resized((w, h))  # R3: exactly w x h
        case Fit():
            return s.resized(fit.times(s.size))  # R4: upscales
        case Limit():
            return s.resized(fit.times(s.size)) if fit.below_one() else s  # R6
        case Fill(gravity=g) | Thumb(gravity=g):
            # R7; R10: c_thumb without face detection is c_fill at its gravity.
            return _fill(s, (w, h), fill, g, cover)
        case LFill(gravity=g):
            return _fill(s, (w, h), fill.at_most_one(), g, cover)  # R7: never upscales
        case Pad(gravity=g, background=b):
            return _pad(s, (w, h), fit, g, b.rgba if b else None, alpha_output)
        case LPad(gravity=g, background=b):
            rgba = b.rgba if b else None
            return _pad(s, (w, h), fit.at_most_one(), g, rgba, alpha_output)


def _fill(
    s: S,
    box: Dimensions,
    scale: _Scale,
    gravity: Gravity | None,
    cover: Callable[[Dimensions], None],
) -> S:
    """R7: scale to cover, then crop the box (or less) at gravity.

    The cover is resampled whole before the crop, and may be far larger than
    the box: a 1x4000 image filled to 4096x1 is covered at 4096x16384000.
    `cover` refuses it before any pixel is touched.
    """
    size = scale.times(s.size)
    cover(size)
    s = s.resized(size)
    region = (min(box[0], s.size[0]), min(box[1], s.size[1]))
    return _cut(s, region, _anchor(gravity or Gravity.CENTER, s.size, region))


def _pad(
    s: S,
    box: Dimensions,
    scale: _Scale,
    gravity: Gravity | None,
    background: RGBA | None,
    alpha_output: bool,
) -> S:
    """R8: fit, then place on a box canvas; white under JPEG, else transparent."""
    s = s.resized(scale.times(s.size))
    color = background or (CLEAR if alpha_output else WHITE)
    return s.padded(box, _anchor(gravity or Gravity.CENTER, box, s.size), color)


def _crop(s: S, crop: Crop) -> S:
    """R9: cut w x h without scaling; clamped to the image; x/y move the region."""
    width0, height0 = s.size
    region = (min(crop.width or width0, width0), min(crop.height or height0, height0))
    has_offset = crop.x is not None or crop.y is not None
    gravity = crop.gravity or (Gravity.NORTH_WEST if has_offset else Gravity.CENTER)
    left, top = _placement(gravity, s.size, region, crop.x or 0, crop.y or 0)
    left = min(max(left, 0), width0 - region[0])
    top = min(max(top, 0), height0 - region[1])
    return _cut(s, region, (left, top))


def _cut(s: S, region: Dimensions, at: Dimensions) -> S:
    return s if region == s.size else s.cut(region, at)


def _anchor(gravity: Gravity, outer: Dimensions, inner: Dimensions) -> Dimensions:
    """Top-left of `inner` inside `outer` at a compass gravity (R15: floor halves)."""
    dx, dy = outer[0] - inner[0], outer[1] - inner[1]
    name = gravity.value
    left = 0 if "west" in name else dx if "east" in name else dx // 2
    top = 0 if name.startswith("north") else dy if name.startswith("south") else dy // 2
    return left, top


def _placement(
    gravity: Gravity, canvas: Dimensions, layer: Dimensions, x: int, y: int
) -> Dimensions:
    """R13/R14: where an overlay (or crop region) goes; offsets point inwards."""
    left, top = _anchor(gravity, canvas, layer)
    name = gravity.value
    left += -x if "east" in name else x
    top += -y if name.startswith("south") else y
    return left, top


def _edit(s: S, edits: tuple[Edit, ...]) -> S:
    """Angle (clockwise, as Cloudinary), effect, then opacity, in the model's order."""
    for edit in edits:
        match edit:
            case Rotate(angle=angle):
                if angle % 360:
                    s = s.turned(angle % 360)
            case Mirror():
                s = s.mirrored()
            case Grayscale():
                s = s.grayscale()
            case Negate():
                s = s.negated()
            case Bitonal():
                s = s.bitonal()
            case Opacity(percent=percent):
                if percent < 100:
                    s = s.faded(percent)
    return s


def turned_size(size: Dimensions, degrees: int) -> Dimensions:
    """The bounding box of `size` turned by `degrees`."""
    if degrees % 180 == 0:
        return size
    if degrees % 90 == 0:
        return size[1], size[0]
    radians = math.radians(degrees)
    w, h = size
    return (
        math.ceil(abs(w * math.cos(radians)) + abs(h * math.sin(radians))),
        math.ceil(abs(w * math.sin(radians)) + abs(h * math.cos(radians))),
    )


def _place(base: S, layer: S, placement: Placement) -> S:
    """R13-R18: place the overlay; without fl_no_overflow the canvas grows to fit."""
    left, top = _placement(
        placement.gravity or Gravity.CENTER,
        base.size,
        layer.size,
        placement.x or 0,
        placement.y or 0,
    )
    # R18: an overlay reaching left or up shifts the old canvas right or down.
    shift_x, shift_y = -min(0, left), -min(0, top)
    size = (
        max(base.size[0], left + layer.size[0]) + shift_x,
        max(base.size[1], top + layer.size[1]) + shift_y,
    )
    return base.placed(layer, size, (shift_x, shift_y), (left + shift_x, top + shift_y))


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    size: Dimensions
    hints: Mapping[str, Dimensions | None]  # per source key: first size needed, if any


@dataclass(frozen=True, slots=True)
class _Outline:
    """A `Surface` of sizes only, noting the size each source is first needed at."""

    size: Dimensions
    key: str  # "" for the image, else the overlay's image id
    hints: dict[str, Dimensions | None]

    def _needed(self) -> None:
        self.hints.setdefault(self.key, self.size)

    def _sized(self, size: Dimensions) -> _Outline:
        self._needed()
        return _Outline(size, self.key, self.hints)

    def resized(self, size: Dimensions) -> _Outline:
        return _Outline(size, self.key, self.hints)

    def cut(self, region: Dimensions, at: Dimensions) -> _Outline:
        return self._sized(region)

    def padded(self, size: Dimensions, at: Dimensions, color: RGBA) -> _Outline:
        return self._sized(size)

    def turned(self, degrees: int) -> _Outline:
        return self._sized(turned_size(self.size, degrees))

    def mirrored(self) -> _Outline:
        return self._sized(self.size)

    def grayscale(self) -> _Outline:
        return self._sized(self.size)

    def negated(self) -> _Outline:
        return self._sized(self.size)

    def bitonal(self) -> _Outline:
        return self._sized(self.size)

    def faded(self, percent: int) -> _Outline:
        return self._sized(self.size)

    def placed(
        self, layer: _Outline, size: Dimensions, at: Dimensions, layer_at: Dimensions
    ) -> _Outline:
        layer._needed()
        return self._sized(size)


def plan(
    chain: RenderChain,
    base: Dimensions,
    overlays: Mapping[str, Dimensions],
    limits: Limits,
    *,
    alpha_output: bool,
    encoder: Encoder | None = None,
) -> Plan:
    """The output size and decode hints, from sizes alone; refuses plans over budget,
    and, given the output's `encoder`, an output longer than it writes.

    A source used by more than one overlay step gets no hint: it is decoded once,
    at full size, and each use resamples from that.
    """
    hints: dict[str, Dimensions | None] = {}
    sizes = [base]
    outline = walk(
        chain,
        _Outline(base, "", hints),
        lambda key: _Outline(overlays[key], key, hints),
        limits,
        alpha_output=alpha_output,
        trace=sizes.append,
    )
    if encoder is not None:
        _check_sides(sizes, encoder, chain)
    outline._needed()
    uses: dict[str, int] = {}
    for step in chain.steps:
        if isinstance(step, Overlay):
            uses[step.image] = uses.get(step.image, 0) + 1
    for key, count in uses.items():
        if count > 1:
            hints[key] = None
    return Plan(size=outline.size, hints=hints)
