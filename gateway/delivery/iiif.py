"""IIIF Image API 3.0: its URL grammar, its geometry, and the model it compiles to.

A request `{region}/{size}/{rotation}/{quality}.{format}` is parsed in two
passes: the syntax first (a malformed parameter is a 400 before the image is
even looked up), then against the image's size and what the caller may see.
It compiles into the same transformation model as a token (crop, then
sizing, then mirror, turn and quality), which is rendered locally or signed
for Cloudinary like every other path.

Where the validator of the IIIF consortium is stricter than the
specification, this follows the validator: without `^`, no size form may
enlarge the region, `!w,h` included.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from gateway.errors import IiifParameterError, UnsupportedFeatureError
from transforms import Limits, Transformation
from transforms.model import (
    Adjust,
    Bitonal,
    Crop,
    Edit,
    Grayscale,
    Mirror,
    Rotate,
    Scale,
    Step,
)
from transforms.render.plan import turned_size

__all__ = [
    "CONTEXT",
    "FORMATS",
    "PROFILE_URI",
    "Box",
    "ImageRequest",
    "Quality",
    "Syntax",
    "View",
    "info_document",
    "level_size",
    "over_budget",
    "parse",
    "policy_size",
    "resolve",
    "scale_factors",
]

CONTEXT: Final = "http://iiif.io/api/image/3/context.json"
PROTOCOL: Final = "http://iiif.io/api/image"
PROFILE_URI: Final = "http://iiif.io/api/image/3/level2.json"
TILE: Final = 256
# The formats served (jpg and png are level 2's); the IIIF formats refused
# with 501, a valid request this gateway does not support.
FORMATS: Final = ("jpg", "png", "webp", "gif", "avif")
_KNOWN_FORMATS: Final = frozenset({"tif", "jp2", "pdf"})
_EXTRA_FORMATS: Final = ["webp", "gif", "avif"]
_EXTRA_FEATURES: Final = ["mirroring", "sizeUpscaling", "profileLinkHeader",
                          "canonicalLinkHeader"]  # fmt: skip

_NUMBER: Final = r"(?:0|[1-9][0-9]{0,8})"
_DECIMAL: Final = r"(?:[0-9]{1,9}(?:\.[0-9]{1,6})?)"
_PIXELS: Final = re.compile(rf"({_NUMBER}),({_NUMBER}),({_NUMBER}),({_NUMBER})")
_PERCENTS: Final = re.compile(
    rf"pct:({_DECIMAL}),({_DECIMAL}),({_DECIMAL}),({_DECIMAL})"
)
_SIZE_WH: Final = re.compile(rf"(!)?({_NUMBER})?,({_NUMBER})?")
_SIZE_PCT: Final = re.compile(rf"pct:({_DECIMAL})")
_ROTATION: Final = re.compile(rf"(!)?({_DECIMAL})")


class Quality(StrEnum):
    DEFAULT = "default"
    COLOR = "color"
    GRAY = "gray"
    BITONAL = "bitonal"


_QUALITIES: Final = frozenset(q.value for q in Quality)
_QUALITY_EDITS: Final[Mapping[Quality, Edit]] = {
    Quality.GRAY: Grayscale(),
    Quality.BITONAL: Bitonal(),
}


Box = tuple[int, int, int, int]  # x, y, width, height


@dataclass(frozen=True, slots=True, kw_only=True)
class Syntax:
    """The parameters as written, checked for form only."""

    region: str
    size: str
    mirror: bool
    rotation: int
    quality: Quality
    format: str


@dataclass(frozen=True, slots=True, kw_only=True)
class View:
    """The part of the image and the size it is delivered at, before any turn."""

    full: tuple[int, int]
    region: Box
    size: tuple[int, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRequest:
    view: View
    mirror: bool
    rotation: int
    quality: Quality
    format: str
    canonical: str  # the request's canonical path after the identifier

    @property
    def edits(self) -> tuple[Step, ...]:
        """Mirror, turn and quality: the model's steps after the view."""
        steps: list[Step] = []
        if self.mirror:
            steps.append(Adjust(edits=(Mirror(),)))
        if self.rotation:
            steps.append(Adjust(edits=(Rotate(angle=self.rotation),)))
        quality = _QUALITY_EDITS.get(self.quality)
        if quality is not None:
            steps.append(Adjust(edits=(quality,)))
        return tuple(steps)

    @property
    def transformation(self) -> Transformation:
        """`c_crop,h_,w_,x_,y_`, then `c_scale`, `a_hflip`, `a_N`, `e_…`."""
        view = self.view
        x, y, w, h = view.region
        steps: list[Step] = []
        if view.region != (0, 0, *view.full):
            steps.append(Adjust(resize=Crop(width=w, height=h, x=x, y=y)))
        if view.size != (w, h):
            steps.append(Adjust(resize=Scale(width=view.size[0], height=view.size[1])))
        return Transformation(steps=(*steps, *self.edits))


def parse(region: str, size: str, rotation: str, file: str) -> Syntax:
    """Each parameter's form, or a 400 naming it; a valid form not supported is a 501."""
    if not (
        region in ("full", "square")
        or _PIXELS.fullmatch(region)
        or _PERCENTS.fullmatch(region)
    ):
        raise IiifParameterError(
            "the region is full, square, x,y,w,h or pct:x,y,w,h", parameter="region"
        )
    if not _size_form(size.removeprefix("^")):
        raise IiifParameterError(
            "the size is max, w,, ,h, pct:n, w,h or !w,h (each may start with ^)",
            parameter="size",
        )
    turn = _ROTATION.fullmatch(rotation)
    if turn is None or float(turn[2]) > 360:
        raise IiifParameterError(
            "the rotation is 0 to 360 degrees, ! first to mirror", parameter="rotation"
        )
    degrees = float(turn[2])
    if not degrees.is_integer():
        raise UnsupportedFeatureError(
            "only whole degrees are supported", parameter="rotation"
        )
    quality, dot, extension = file.rpartition(".")
    if not dot or quality not in _QUALITIES:
        raise IiifParameterError(
            "the quality is default, color, gray or bitonal", parameter="quality"
        )
    if extension in _KNOWN_FORMATS:
        raise UnsupportedFeatureError(
            f"{extension} is not served; {', '.join(FORMATS)} are", parameter="format"
        )
    if extension not in FORMATS:
        raise IiifParameterError(
            f"the format is one of {', '.join(FORMATS)}", parameter="format"
        )
    return Syntax(
        region=region,
        size=size,
        mirror=turn[1] is not None,
        rotation=int(degrees) % 360,
        quality=Quality(quality),
        format=extension,
    )


def _size_form(bare: str) -> bool:
    if bare == "max" or _SIZE_PCT.fullmatch(bare):
        return True
    wh = _SIZE_WH.fullmatch(bare)
    if wh is None:
        return False
    confined, width, height = wh.groups()
    # `w,` and `,h` alone; `!` only with both.
    return bool(width and height) or (not confined and bool(width or height))


def resolve(
    syntax: Syntax, full: tuple[int, int], limits: Limits, scale_cap: float
) -> ImageRequest:
    """The request on an image of size `full`, for a caller who may see up to `scale_cap`.

    `scale_cap` (at most 1) is the largest scale of the whole image the
    caller may have: `max` means that, not more.
    """
    box = _region(syntax.region, full)
    out, canonical_size = _size(syntax.size, box, limits, scale_cap)
    region = "full" if box == (0, 0, *full) else ",".join(map(str, box))
    rotation = ("!" if syntax.mirror else "") + str(syntax.rotation)
    canonical = f"{region}/{canonical_size}/{rotation}/{syntax.quality}.{syntax.format}"
    return ImageRequest(
        view=View(full=full, region=box, size=out),
        mirror=syntax.mirror,
        rotation=syntax.rotation,
        quality=syntax.quality,
        format=syntax.format,
        canonical=canonical,
    )


def _region(raw: str, full: tuple[int, int]) -> Box:
    width, height = full
    if raw == "full":
        return 0, 0, width, height
    if raw == "square":
        side = min(width, height)
        return (width - side) // 2, (height - side) // 2, side, side
    if (pixels := _PIXELS.fullmatch(raw)) is not None:
        x, y, w, h = (int(v) for v in pixels.groups())
    else:
        percents = _PERCENTS.fullmatch(raw)
        assert percents is not None  # noqa: S101 - parse() checked the form
        px, py, pw, ph = (float(v) for v in percents.groups())
        x, y = round(px * width / 100), round(py * height / 100)
        w, h = round(pw * width / 100), round(ph * height / 100)
    if w <= 0 or h <= 0:
        raise IiifParameterError("the region is empty", parameter="region")
    if x >= width or y >= height:
        raise IiifParameterError(
            f"the region lies outside the {width}x{height} image", parameter="region"
        )
    # Beyond the image's edges, the region is cut at them.
    return x, y, min(w, width - x), min(h, height - y)


def _size(
    raw: str, box: Box, limits: Limits, scale_cap: float
) -> tuple[tuple[int, int], str]:
    """The delivered size of the region, and its canonical form."""
    upscale = raw.startswith("^")
    bare = raw.removeprefix("^")
    rw, rh = box[2], box[3]
    if bare == "max":
        # `^max` is `max` too, as the validator's `size_up` expects: the
        # region's own size at most, not maxWidth's.
        scale = min(1.0, scale_cap, limits.max_size / rw, limits.max_size / rh)
        scale = min(scale, math.sqrt(limits.max_output_pixels / (rw * rh)))
        return ((rw, rh) if scale >= 1 else _floored((rw, rh), scale)), "max"
    if (pct := _SIZE_PCT.fullmatch(bare)) is not None:
        factor = float(pct[1]) / 100
        out = (round(rw * factor), round(rh * factor))
    else:
        m = _SIZE_WH.fullmatch(bare)
        assert m is not None  # noqa: S101 - parse() checked the form
        confined, w_raw, h_raw = m.groups()
        w = int(w_raw) if w_raw else None
        h = int(h_raw) if h_raw else None
        if w is not None and h is not None:
            out = _confined(w, h, (rw, rh), limits, scale_cap) if confined else (w, h)
        elif w is not None:
            out = (w, round(rh * w / rw))
        elif h is not None:
            out = (round(rw * h / rh), h)
        else:  # pragma: no cover - parse() refused it
            raise IiifParameterError("the size names no side", parameter="size")
    if out[0] < 1 or out[1] < 1:
        raise IiifParameterError("the size makes an empty image", parameter="size")
    enlarges = out[0] > rw or out[1] > rh
    if enlarges and not upscale:
        raise IiifParameterError(
            f"the size enlarges the {rw}x{rh} region: ask with ^ to enlarge",
            parameter="size",
        )
    if max(out) > limits.max_size or out[0] * out[1] > limits.max_output_pixels:
        raise IiifParameterError(
            f"at most {limits.max_size} pixels a side and "
            f"{limits.max_output_pixels} in all are served",
            parameter="size",
        )
    # Canonically `^` only when the region is enlarged (section 4.8).
    return out, ("^" if enlarges else "") + f"{out[0]},{out[1]}"


def _confined(
    w: int, h: int, region: tuple[int, int], limits: Limits, scale_cap: float
) -> tuple[int, int]:
    """`!w,h`: the region fitted in w x h, and in what the server serves this
    caller (section 4.4: "as large as possible but not larger than … w or h,
    or server-imposed limits": maxWidth, maxHeight and maxArea, which for a
    capped caller are the cap's), so a viewer's `^!5000,5000` gets the most
    served, never a 400. Whether it enlarges the region is for the caller to
    judge (`^`).
    """
    rw, rh = region
    fit = min(w / rw, h / rh)
    # At least a pixel a side: a 1x2000 strip in !1,1 is 1x1, not refused as empty.
    out = min(w, max(1, round(rw * fit))), min(h, max(1, round(rh * fit)))
    side = limits.max_size
    if max(out) > side:
        # The longest side at the limit, the other from the exact ratio.
        other = max(1, round(min(rw, rh) * side / max(rw, rh)))
        out = (side, other) if rw >= rh else (other, side)
    if out[0] * out[1] > limits.max_output_pixels:
        out = _floored(region, math.sqrt(limits.max_output_pixels / (rw * rh)))
    if scale_cap < 1:
        # Last, as the limits above round too. A capped caller (scale_cap <
        # 1): no side past the cap's scale, as `max` fits the cap (sides
        # floored, so the policy counts no more). A side rounded up at the
        # cap's scale or just under it (389.5 to 390, 27.7 to 28), or by the
        # limits, would be over the cap, and the caller refused.
        capped = _floored(region, scale_cap)
        out = min(out[0], capped[0]), min(out[1], capped[1])
    return out


def _floored(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """`size` scaled down, each side floored (so no limit is passed), at least 1."""
    return max(1, math.floor(size[0] * scale)), max(1, math.floor(size[1] * scale))


def over_budget(request: ImageRequest, limits: Limits) -> IiifParameterError:
    """The render plan's refusal in IIIF terms, naming the segment to change.

    The plan names the model's steps, which a IIIF request never wrote. Its
    view is within maxArea (`_size`); only a turn off the right angles grows
    it after that.
    """
    budget = limits.max_output_pixels
    width, height = request.view.size
    turned = turned_size((width, height), request.rotation)
    if turned[0] * turned[1] > budget:
        return IiifParameterError(
            f"turned by {request.rotation} degrees, the {width}x{height} image "
            f"becomes {turned[0]}x{turned[1]}, over the {budget} pixels (maxArea) "
            "rendered: ask for a smaller size or a right angle",
            parameter="rotation",
        )
    return IiifParameterError(
        f"the request makes an image over the {budget} pixels (maxArea) rendered: "
        "ask for a smaller size",
        parameter="size",
    )


def policy_size(view: View) -> int:
    """The longest side the whole image has at the view's scale (the access policy's size).

    The scale is the larger of the two axes', applied to the longest side: a
    squeezed request (`full/400,400` of a 4000x400 panorama capped at 400)
    gets no more detail along its short axis than the cap allows along the
    long one. One pixel for a whole side is the least any rendering of it
    has, so it counts as no detail (a 6000x5 strip at 400 is 400x1).
    """
    (width, height), (_, _, rw, rh), (ow, oh) = view.full, view.region, view.size
    scale = max(_axis_scale(ow, rw, width), _axis_scale(oh, rh, height))
    return math.ceil(max(width, height) * scale - 1e-9)


def _axis_scale(out: int, region: int, whole: int) -> float:
    return 0.0 if out == 1 and region == whole else out / region


def level_size(full: tuple[int, int], factor: int) -> tuple[int, int]:
    """The whole image at 1/`factor`, sides rounded up (IIIF's tile arithmetic)."""
    return math.ceil(full[0] / factor), math.ceil(full[1] / factor)


def _worst_tile_size(full: tuple[int, int], factor: int) -> int:
    """The largest policy size of any tile at `factor`: its last column and row."""
    span = TILE * factor
    worst = 0
    for axis in (0, 1):
        start = (full[axis] - 1) // span * span
        extent = full[axis] - start
        region = [0, 0, *full]
        region[axis], region[axis + 2] = start, extent
        out = list(level_size(full, factor))
        out[axis] = math.ceil(extent / factor)
        view = View(
            full=full,
            region=(region[0], region[1], region[2], region[3]),
            size=(out[0], out[1]),
        )
        worst = max(worst, policy_size(view))
    return worst


def scale_factors(full: tuple[int, int], longest_allowed: int | None) -> list[int]:
    """Powers of two down to one tile for the whole image, each within what is allowed."""
    factors = []
    factor = 1
    while True:
        if longest_allowed is None or _worst_tile_size(full, factor) <= longest_allowed:
            factors.append(factor)
        if max(level_size(full, factor)) <= TILE:
            return factors
        factor *= 2


def info_document(
    service_id: str, full: tuple[int, int], limits: Limits, longest_allowed: int | None
) -> dict[str, object]:
    """The `info.json` of an image, advertising only what the caller may have."""
    width, height = full
    factors = scale_factors(full, longest_allowed)
    if longest_allowed is not None and longest_allowed < max(full):
        capped = _floored(full, longest_allowed / max(full))
        max_width, max_height = (min(limits.max_size, side) for side in capped)
    else:
        max_width = max_height = limits.max_size
    sizes = [
        {"width": w, "height": h}
        for w, h in (level_size(full, f) for f in reversed(factors))
        if w <= max_width and h <= max_height and w * h <= limits.max_output_pixels
    ]
    doc: dict[str, object] = {
        "@context": CONTEXT,
        "id": service_id,
        "type": "ImageService3",
        "protocol": PROTOCOL,
        "profile": "level2",
        "width": width,
        "height": height,
        "maxWidth": max_width,
        "maxHeight": max_height,
        "maxArea": limits.max_output_pixels,
        "sizes": sizes,
        "tiles": [{"width": TILE, "height": TILE, "scaleFactors": factors}]
        if factors
        else [],
        "extraFormats": _EXTRA_FORMATS,
        "extraQualities": ["color", "gray", "bitonal"],
        "extraFeatures": _EXTRA_FEATURES,
    }
    return doc
