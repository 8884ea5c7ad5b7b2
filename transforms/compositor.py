"""Render a chain locally with Pillow, following Cloudinary's geometry.

The rules are those of `shared/cloudinary-geometry.md` (R1-R24); comments cite
them. One walker serves two passes so that they can never disagree:

- `plan()` walks the chain over sizes only: it enforces the output pixel budget
  before any pixel is touched and finds, for each source, the size it is first
  needed at (so big JPEGs can be decoded at reduced scale with `draft`);
- `compose()` walks it again over the decoded images.

Resizes are lazy: a canvas carries its logical size and is resampled only when
an operation needs its pixels, so consecutive proportional resizes (the base
chain's fit-to-1920 then a fit-to-800) cost one high-quality resample from the
decoded source. Only this module imports Pillow.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from transforms.chain import RenderChain
from transforms.errors import (
    LimitExceededError,
    OutputTooLargeError,
    SourceImageError,
    UnsupportedFormatError,
)
from transforms.limits import Limits
from transforms.model import (
    CropMode,
    Effect,
    Gravity,
    Overlay,
    Step,
)

__all__ = [
    "ALLOWED_FORMATS",
    "OUTPUT_FORMATS",
    "Decoded",
    "Plan",
    "SourceInfo",
    "compose",
    "decode",
    "encode",
    "plan",
    "probe",
    "sample_image",
]

# Pillow opens only these (never EPS, PDF, PSD, …): `Image.open(formats=…)`.
ALLOWED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF")
MEDIA_TYPES: Final[Mapping[str, str]] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
# Output extension -> (Pillow format, media type, keeps alpha).
OUTPUT_FORMATS: Final[Mapping[str, tuple[str, str, bool]]] = {
    "jpg": ("JPEG", "image/jpeg", False),
    "png": ("PNG", "image/png", True),
    "webp": ("WEBP", "image/webp", True),
    "avif": ("AVIF", "image/avif", True),
}
_SWAPPED_ORIENTATIONS: Final = frozenset({5, 6, 7, 8})  # EXIF: width and height swap
_EXIF_ORIENTATION: Final = 0x0112
_WHITE: Final = (255, 255, 255, 255)
_CLEAR: Final = (0, 0, 0, 0)
Size = tuple[int, int]
RGB = tuple[int, int, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceInfo:
    """What ingest records of an original: decoded facts, not the file name's."""

    format: str
    media_type: str
    width: int  # after EXIF orientation
    height: int


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded source image, opaque outside this module."""

    image: Image.Image
    size: Size  # the logical (oriented, full-resolution) size


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    size: Size
    hints: Mapping[str, Size | None]  # per source key: first size needed, if any


def _open(data: bytes, limits: Limits) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise LimitExceededError(str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedFormatError(
            "not a JPEG, PNG, WebP or GIF image (decided from its bytes)"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise SourceImageError(f"the image cannot be read: {exc}") from exc
    except Image.DecompressionBombWarning as exc:  # raised when warnings are errors
        raise LimitExceededError(str(exc)) from exc
    width, height = image.size
    if width * height > limits.max_source_pixels:
        # Refused from the header alone, before any pixel is decoded.
        raise LimitExceededError(
            f"the image has {width}x{height} = {width * height} pixels; "
            f"at most {limits.max_source_pixels} are accepted"
        )
    return image


def _oriented(image: Image.Image) -> Size:
    width, height = image.size
    orientation = image.getexif().get(_EXIF_ORIENTATION)
    return (height, width) if orientation in _SWAPPED_ORIENTATIONS else (width, height)


def probe(data: bytes, limits: Limits) -> SourceInfo:
    """Identify and fully decode an original once, at ingest: truncation shows here."""
    image = _open(data, limits)
    fmt = image.format or ""
    size = _oriented(image)
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise SourceImageError(f"the image cannot be decoded: {exc}") from exc
    return SourceInfo(
        format=fmt, media_type=MEDIA_TYPES[fmt], width=size[0], height=size[1]
    )


def decode(data: bytes, limits: Limits, hint: Size | None = None) -> Decoded:
    """Decode a source, and size it to `hint` when the plan knows it.

    A JPEG needed at `hint` pixels is decoded at reduced scale (1/2 to 1/8, never
    below `hint`), then resampled to `hint` here, in the decoding thread: the
    sources of one render are decoded, and resized, in parallel.
    """
    image = _open(data, limits)
    size = _oriented(image)
    try:
        if hint is not None and image.format == "JPEG":
            swapped = size != image.size
            draft = (hint[1], hint[0]) if swapped else hint
            # Scales by 1/2, 1/4 or 1/8 while staying at least `draft` in size.
            image.draft("RGB", draft)
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise SourceImageError(f"the image cannot be decoded: {exc}") from exc
    image = ImageOps.exif_transpose(image)  # a new image, upright
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    if hint is not None and image.size != hint:
        image = image.resize(hint, Image.Resampling.LANCZOS, reducing_gap=3.0)
    # Pillow carries `info` (EXIF, comments, XMP) through resize and copy, and
    # writes some of it back on save: metadata must never reach an output.
    image.info = {}
    return Decoded(image, size)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _round(value: float) -> int:
    """R11: round half up, never below one pixel."""
    return max(1, math.floor(value + 0.5))


@dataclass(slots=True)
class _Canvas:
    """A canvas of logical `size`; `image` is None while planning."""

    size: Size
    image: Image.Image | None
    key: str
    hints: dict[str, Size | None] | None = None
    first: bool = field(default=True)

    def pixels(self) -> Image.Image | None:
        """Resample to the logical size, once, only when pixels are needed."""
        if self.first and self.hints is not None:
            self.hints.setdefault(self.key, self.size)
        self.first = False
        image = self.image
        if image is None:
            return None
        if image.size != self.size:
            image = image.resize(self.size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        if image.mode != "RGBA":
            image = image.convert("RGBA")
        self.image = image
        return image

    def replace(self, size: Size, image: Image.Image | None) -> None:
        self.size, self.image = size, image


def _anchor(gravity: Gravity, outer: Size, inner: Size) -> Size:
    """Top-left of `inner` inside `outer` at a compass gravity (R15: floor halves)."""
    dx, dy = outer[0] - inner[0], outer[1] - inner[1]
    name = gravity.value
    left = 0 if "west" in name else dx if "east" in name else dx // 2
    top = 0 if name.startswith("north") else dy if name.startswith("south") else dy // 2
    return left, top


def _placement(gravity: Gravity, canvas: Size, layer: Size, x: int, y: int) -> Size:
    """R13/R14: where an overlay (or crop region) goes; offsets point inwards."""
    left, top = _anchor(gravity, canvas, layer)
    name = gravity.value
    left += -x if "east" in name else x
    top += -y if name.startswith("south") else y
    return left, top


_NO_UPSCALE: Final = frozenset({CropMode.LIMIT, CropMode.LFILL, CropMode.LPAD})


def _resize(canvas: _Canvas, step: Step, alpha_output: bool) -> None:
    """R3-R10 on one canvas (the base, or an overlay before its placement)."""
    width0, height0 = canvas.size
    w, h = step.width, step.height
    mode = step.crop or CropMode.SCALE  # Cloudinary's default crop mode
    if mode is CropMode.CROP:
        _crop_region(canvas, step)
        return
    if w is None or h is None:
        if w is None and h is None:
            return
        # R3, R5, R6: one dimension keeps the aspect ratio in every mode; the
        # limiting modes never upscale, compared on that dimension only.
        scale = w / width0 if w is not None else (h or height0) / height0
        if mode in _NO_UPSCALE and scale >= 1:
            return
        canvas.size = (_round(width0 * scale), _round(height0 * scale))
        return
    fit = min(w / width0, h / height0)
    fill = max(w / width0, h / height0)
    match mode:
        case CropMode.SCALE:
            canvas.size = (w, h)  # R3: exactly w x h
        case CropMode.FIT | CropMode.LIMIT:
            if mode is CropMode.FIT or fit < 1:  # R4 upscales; R6 does not
                canvas.size = (_round(width0 * fit), _round(height0 * fit))
        case CropMode.FILL | CropMode.LFILL | CropMode.THUMB:
            # R7; R10: c_thumb without face detection is c_fill at its gravity.
            if mode is CropMode.LFILL:
                fill = min(fill, 1.0)
            canvas.size = (_round(width0 * fill), _round(height0 * fill))
            region = (min(w, canvas.size[0]), min(h, canvas.size[1]))
            _cut(
                canvas,
                region,
                _anchor(step.gravity or Gravity.CENTER, canvas.size, region),
            )
        case CropMode.PAD | CropMode.LPAD:
            # R8: fit (c_lpad: never upscaling), then place on a w x h canvas.
            scale = min(fit, 1.0) if mode is CropMode.LPAD else fit
            inner = (_round(width0 * scale), _round(height0 * scale))
            canvas.size = inner
            image = canvas.pixels()
            if image is not None:
                default = _CLEAR if alpha_output else _WHITE
                color = step.background.rgba if step.background else default
                padded = Image.new("RGBA", (w, h), color)
                offset = _anchor(step.gravity or Gravity.CENTER, (w, h), inner)
                padded.alpha_composite(image, offset)
                image = padded
            canvas.replace((w, h), image)


def _crop_region(canvas: _Canvas, step: Step) -> None:
    """R9: cut w x h without scaling; clamped to the image; x/y move the region."""
    width0, height0 = canvas.size
    region = (min(step.width or width0, width0), min(step.height or height0, height0))
    has_offset = step.x is not None or step.y is not None
    gravity = step.gravity or (Gravity.NORTH_WEST if has_offset else Gravity.CENTER)
    left, top = _placement(gravity, canvas.size, region, step.x or 0, step.y or 0)
    left = min(max(left, 0), width0 - region[0])
    top = min(max(top, 0), height0 - region[1])
    _cut(canvas, region, (left, top))


def _cut(canvas: _Canvas, region: Size, at: Size) -> None:
    if region == canvas.size:
        return
    image = canvas.pixels()
    if image is not None:
        image = image.crop((at[0], at[1], at[0] + region[0], at[1] + region[1]))
    canvas.replace(region, image)


def _effects(canvas: _Canvas, step: Step) -> None:
    """Angle (clockwise, as Cloudinary), effect, then opacity, on one canvas."""
    if step.angle is not None and step.angle % 360:
        image = canvas.pixels()
        turn = step.angle % 360
        if turn % 90 == 0:
            size = canvas.size if turn == 180 else (canvas.size[1], canvas.size[0])
            if image is not None:
                transpose = {
                    90: Image.Transpose.ROTATE_270,
                    180: Image.Transpose.ROTATE_180,
                    270: Image.Transpose.ROTATE_90,
                }[turn]
                image = image.transpose(transpose)
        else:
            radians = math.radians(turn)
            w, h = canvas.size
            size = (
                math.ceil(abs(w * math.cos(radians)) + abs(h * math.sin(radians))),
                math.ceil(abs(w * math.sin(radians)) + abs(h * math.cos(radians))),
            )
            if image is not None:
                image = image.rotate(
                    -turn, Image.Resampling.BICUBIC, expand=True, fillcolor=_CLEAR
                )
                size = image.size
        canvas.replace(size, image)
    if step.effect is not None:
        image = canvas.pixels()
        if image is not None:
            alpha = image.getchannel("A")
            if step.effect is Effect.GRAYSCALE:
                gray = image.convert("L")
                image = Image.merge("RGBA", (gray, gray, gray, alpha))
            else:
                r, g, b = ImageOps.invert(image.convert("RGB")).split()
                image = Image.merge("RGBA", (r, g, b, alpha))
            canvas.replace(canvas.size, image)
    if step.opacity is not None and step.opacity < 100:
        image = canvas.pixels()
        if image is not None:
            factor = step.opacity / 100
            alpha = image.getchannel("A").point(lambda a: round(a * factor))
            image = image.copy()
            image.putalpha(alpha)
            canvas.replace(canvas.size, image)


def _place(base: _Canvas, layer: _Canvas, step: Overlay) -> None:
    """R13-R18: place the overlay; without fl_no_overflow the canvas grows to fit."""
    left, top = _placement(
        step.gravity or Gravity.CENTER, base.size, layer.size, step.x or 0, step.y or 0
    )
    shift_x, shift_y = -min(0, left), -min(0, top)
    size = (
        max(base.size[0], left + layer.size[0]) + shift_x,
        max(base.size[1], top + layer.size[1]) + shift_y,
    )
    image = base.pixels()
    overlay = layer.pixels()
    if image is not None and overlay is not None:
        if size != image.size:
            # R18/R19: transparent where nothing was placed; the old canvas shifts
            # right/down when the overlay reaches left/up. Onto a transparent
            # canvas, a plain copy is exactly what compositing would give.
            canvas = Image.new("RGBA", size, _CLEAR)
            canvas.paste(image, (shift_x, shift_y))
        else:
            canvas = image.copy()
        at = (left + shift_x, top + shift_y)
        if _opaque(overlay):
            canvas.paste(overlay, at)
        else:
            canvas.alpha_composite(overlay, at)
        image = canvas
    base.replace(size, image)


def _opaque(image: Image.Image) -> bool:
    return image.getchannel("A").getextrema() == (255, 255)


def _walk(
    chain: RenderChain,
    base: _Canvas,
    layers: Mapping[str, tuple[Size, Image.Image | None]],
    limits: Limits,
    alpha_output: bool,
) -> None:
    budget = limits.max_output_pixels
    for index, step in enumerate(chain.steps):
        target = base
        if isinstance(step, Overlay):
            size, image = layers[step.image]
            target = _Canvas(size, image, step.image, base.hints)
        _resize(target, step, alpha_output)
        _check(target.size, budget, index)
        _effects(target, step)
        if isinstance(step, Overlay):
            _place(base, target, step)
        _check(base.size, budget, index)


def _check(size: Size, budget: int, index: int) -> None:
    if size[0] * size[1] > budget:
        raise OutputTooLargeError(
            f"step {index} makes a {size[0]}x{size[1]} image; "
            f"at most {budget} pixels are rendered",
            pointer=f"/transformations/{index}",
        )


def plan(
    chain: RenderChain,
    base: Size,
    overlays: Mapping[str, Size],
    limits: Limits,
    *,
    alpha_output: bool,
) -> Plan:
    """The output size and decode hints, from sizes alone; refuses plans over budget.

    A source used by more than one overlay step gets no hint: it is decoded once,
    at full size, and each use resamples from that.
    """
    hints: dict[str, Size | None] = {}
    canvas = _Canvas(base, None, "", hints)
    layers = {key: (size, None) for key, size in overlays.items()}
    _walk(chain, canvas, layers, limits, alpha_output)
    canvas.pixels()
    uses: dict[str, int] = {}
    for step in chain.steps:
        if isinstance(step, Overlay):
            uses[step.image] = uses.get(step.image, 0) + 1
    for key, count in uses.items():
        if count > 1:
            hints[key] = None
    return Plan(size=canvas.size, hints=hints)


def compose(
    chain: RenderChain,
    base: Decoded,
    overlays: Mapping[str, Decoded],
    limits: Limits,
    *,
    alpha_output: bool,
) -> Decoded:
    canvas = _Canvas(base.size, base.image, "")
    layers = {key: (d.size, d.image) for key, d in overlays.items()}
    _walk(chain, canvas, layers, limits, alpha_output)
    image = canvas.pixels()
    assert image is not None  # noqa: S101 - composing always has pixels
    return Decoded(image, canvas.size)


def encode(rendered: Decoded, extension: str, quality: int) -> bytes:
    """Encode without metadata: no EXIF, GPS or comments reach the output."""
    pillow_format, _, keeps_alpha = OUTPUT_FORMATS[extension]
    image = rendered.image
    if not keeps_alpha and image.mode == "RGBA":
        if not _opaque(image):
            # R19: flatten onto white where nothing was placed.
            flat = Image.new("RGBA", image.size, _WHITE)
            flat.alpha_composite(image)
            image = flat
        image = image.convert("RGB")
    out = io.BytesIO()
    options: dict[str, object] = {}
    if pillow_format == "JPEG":
        options = {"quality": quality, "progressive": True}
    elif pillow_format in ("WEBP", "AVIF"):
        options = {"quality": quality}
    image.save(out, format=pillow_format, **options)
    return out.getvalue()


def sample_image(width: int, height: int, colors: tuple[RGB, RGB]) -> bytes:
    """A generated JPEG (a diagonal gradient and a disc), for demos and benchmarks."""
    top, bottom = colors
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(
        Image.new("RGB", (width, height), bottom),
        Image.new("RGB", (width, height), top),
        gradient,
    )
    disc = Image.new("L", (width, height), 0)
    radius = min(width, height) // 4
    ImageDraw.Draw(disc).ellipse(
        (
            width // 2 - radius,
            height // 2 - radius,
            width // 2 + radius,
            height // 2 + radius,
        ),
        fill=200,
    )
    image.paste((255, 255, 255), mask=disc)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()
