"""Decode, compose and encode with Pillow: the pixel side of the local renderer.

`compose()` runs the geometry walker of `transforms.render.plan` over `_Raster`,
the Pillow implementation of its `Surface`. Resizes are lazy: a raster carries
its logical size and is resampled only when an operation needs its pixels, so
consecutive proportional resizes (the base chain's fit-to-1920 then a
fit-to-800) cost one high-quality resample from the decoded source. Only this
module of `transforms` imports Pillow.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from transforms.errors import (
    LimitExceededError,
    OutputTooLargeError,
    SourceImageError,
    UnsupportedFormatError,
)
from transforms.limits import Limits
from transforms.render.chain import RenderChain
from transforms.render.plan import CLEAR, RGBA, WHITE, Dimensions, Encoder, walk
from transforms.render.png import check_png

__all__ = [
    "ALLOWED_FORMATS",
    "ENCODERS",
    "MEDIA_TYPES",
    "OUTPUT_FORMATS",
    "Decoded",
    "SourceInfo",
    "compose",
    "cut",
    "decode",
    "encode",
    "load_codecs",
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
    "gif": ("GIF", "image/gif", False),  # one frame, adaptive palette, no alpha
}
# Output extension -> the longest side written, as Pillow's codecs do (tests
# encode each at its limit and one past it): libjpeg-turbo's JPEG_MAX_DIMENSION,
# below the format's 65535; WebP's 14-bit sides; GIF's 16-bit ones; libavif
# writes 65536 but reads back only 32768 (its default dimension limit); PNG's
# 31-bit ones, far past any pixel budget.
ENCODERS: Final[Mapping[str, Encoder]] = {
    "jpg": Encoder(name="JPEG", max_side=65500),
    "png": Encoder(name="PNG", max_side=2**31 - 1),
    "webp": Encoder(name="WebP", max_side=16383),
    "avif": Encoder(name="AVIF", max_side=32768),
    "gif": Encoder(name="GIF", max_side=65535),
}
_SWAPPED_ORIENTATIONS: Final = frozenset({5, 6, 7, 8})  # EXIF: width and height swap
# EXIF orientation -> the turn that makes the image upright (as ImageOps.exif_transpose).
_UPRIGHTING: Final[Mapping[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION: Final = 0x0112
_TRANSPOSES: Final[Mapping[int, Image.Transpose]] = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}
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
    size: Dimensions  # the logical (oriented, full-resolution) size


def _open(data: bytes, limits: Limits) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning is raised where warnings are errors. Pillow refuses
        # before `_open` can see the size: say so in the gateway's words.
        raise LimitExceededError(
            "the image's header declares too many pixels; "
            f"at most {_accepted_pixels(limits, exc)} are accepted"
        ) from exc
    except UnidentifiedImageError as exc:
        claimed = _claimed_format(data)
        if claimed is not None:
            # An allowed type cut short: Pillow cannot tell that from a foreign one.
            raise SourceImageError(
                f"the file is a truncated or corrupt {claimed} image: "
                "it cannot be decoded"
            ) from exc
        raise UnsupportedFormatError(
            "not a JPEG, PNG, WebP or GIF image (decided from its bytes)"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise SourceImageError(f"the image cannot be read: {exc}") from exc
    width, height = image.size
    if width * height > limits.max_source_pixels:
        # Refused from the header alone, before any pixel is decoded.
        raise LimitExceededError(
            f"the image has {width}x{height} = {width * height} pixels; "
            f"at most {limits.max_source_pixels} are accepted"
        )
    return image


def _accepted_pixels(limits: Limits, refusal: Exception) -> int:
    """The limit that refused: ours, or Pillow's where an operator set ours above it."""
    ceiling = Image.MAX_IMAGE_PIXELS
    if ceiling is None:  # pragma: no cover - Pillow refuses nothing then
        return limits.max_source_pixels
    if isinstance(refusal, Image.DecompressionBombError):
        ceiling *= 2
    return min(limits.max_source_pixels, ceiling)


def _claimed_format(data: bytes) -> str | None:
    """The allowed format whose signature (magic number) the bytes start with."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WebP"
    return None


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation, the one browsers and Cloudinary apply.

    Read from the EXIF block alone: Pillow's `getexif` falls back to XMP's
    `tiff:Orientation`, which they ignore, and it would also have ingest
    and render disagree on an image's size.
    """
    raw = image.info.get("exif")
    exif = Image.Exif()
    if isinstance(raw, bytes):
        exif.load(raw)
    orientation = exif.get(_EXIF_ORIENTATION)
    return orientation if isinstance(orientation, int) else None


def _oriented(size: Dimensions, orientation: int | None) -> Dimensions:
    width, height = size
    return (height, width) if orientation in _SWAPPED_ORIENTATIONS else (width, height)


def _upright(image: Image.Image, orientation: int | None) -> Image.Image:
    """The image turned as its EXIF orientation says (Pillow's own table)."""
    method = _UPRIGHTING.get(orientation) if orientation is not None else None
    return image if method is None else image.transpose(method)


def _oriented_unloaded(image: Image.Image, data: bytes) -> Dimensions:
    """The upright size, from EXIF read with the header: without decoding the
    pixels. A PNG's eXIf chunk may follow its pixels, where Pillow reads it
    only by decoding them; only a PNG that has one (rare) pays for that."""
    size = image.size
    if "exif" not in image.info and image.format == "PNG" and b"eXIf" in data:
        image.load()
    return _oriented(size, _orientation(image))


def probe(data: bytes, limits: Limits) -> SourceInfo:
    """Identify an original at ingest, reading it to its end without its pixels.

    Size and format come from the header (refused there when too large); the
    rest of the file is still read, so that a truncated or corrupt one is
    refused now, not at its first render: a PNG's image data inflated as its
    decoder reads it (`check_png`) and its chunks' checksums (`verify`), a
    JPEG decoded at an eighth of its size. A small upload can declare a huge
    image (a 190 KB PNG of 7000x7000 zeros): decoding it in full here would
    cost 200 MB for a check.
    """
    image = _open(data, limits)
    fmt = image.format or ""
    try:
        size = _oriented_unloaded(image, data)
        match fmt:
            case "PNG":
                check_png(data)
                # `verify` must come first after opening: open the bytes again.
                Image.open(io.BytesIO(data), formats=("PNG",)).verify()
            case "JPEG":
                width, height = image.size
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                image.load()
            case _:
                image.load()
    except (OSError, ValueError, SyntaxError, struct.error) as exc:
        raise SourceImageError(f"the image cannot be decoded: {exc}") from exc
    return SourceInfo(
        format=fmt, media_type=MEDIA_TYPES[fmt], width=size[0], height=size[1]
    )


def decode(data: bytes, limits: Limits, hint: Dimensions | None = None) -> Decoded:
    """Decode a source, and size it to `hint` when the plan knows it.

    A JPEG needed at `hint` pixels is decoded at reduced scale (1/2 to 1/8, never
    below `hint`), then resampled to `hint` here, in the decoding thread: the
    sources of one render are decoded, and resized, in parallel.
    """
    image = _open(data, limits)
    full = image.size
    try:
        if hint is not None and image.format == "JPEG":
            # A JPEG's EXIF comes with its header.
            swapped = _orientation(image) in _SWAPPED_ORIENTATIONS
            draft = (hint[1], hint[0]) if swapped else hint
            # Scales by 1/2, 1/4 or 1/8 while staying at least `draft` in size.
            image.draft("RGB", draft)
        image.load()
        orientation = _orientation(image)  # a PNG's eXIf may follow its pixels
        image = _upright(image, orientation)
        if image.mode not in ("RGB", "RGBA"):
            # A palette's transparency is applied here, and refused (ValueError)
            # when it has more entries than any palette holds.
            image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    except (OSError, ValueError, SyntaxError, struct.error) as exc:
        raise SourceImageError(f"the image cannot be decoded: {exc}") from exc
    size = _oriented(full, orientation)
    if hint is not None and image.size != hint:
        image = image.resize(hint, Image.Resampling.LANCZOS, reducing_gap=3.0)
    # Pillow carries `info` (EXIF, comments, XMP) through resize and copy, and
    # writes some of it back on save: metadata must never reach an output.
    image.info = {}
    return Decoded(image, size)


def cut(
    level: Decoded, box: tuple[float, float, float, float], size: Dimensions
) -> Decoded:
    """The part `box` (left, top, right, bottom, sub-pixel) of a decoded level at `size`.

    A box of whole pixels already `size` is copied; any other is resampled
    from exactly that part, so a tile costs its own pixels, not the level's.
    """
    left, top, right, bottom = (round(v) for v in box)
    whole = (left, top, right, bottom)
    exact = all(abs(a - b) < 1e-6 for a, b in zip(whole, box, strict=True))
    if exact and (right - left, bottom - top) == size:
        return Decoded(level.image.crop(whole), size)
    image = level.image.resize(size, Image.Resampling.LANCZOS, box=box)
    return Decoded(image, size)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


@dataclass(frozen=True, slots=True)
class _Raster:
    """The Pillow `Surface`: `image` may still await its resample to `size`.

    `opaque` is known, not measured: True only where every step kept every
    pixel opaque (a source without alpha, padding in an opaque colour, …).
    An opaque result is encoded without its alpha channel, and JPEG's
    flattening need not look for transparency: scanning the alpha of a
    4096x4096 result holds the GIL for 30 ms.
    """

    size: Dimensions
    image: Image.Image
    opaque: bool

    def pixels(self) -> Image.Image:
        """RGBA pixels at the logical size, resampled once from the source."""
        image = self.image
        if image.size != self.size:
            image = image.resize(self.size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        if image.mode != "RGBA":
            image = image.convert("RGBA")
        return image

    def resized(self, size: Dimensions) -> _Raster:
        return _Raster(size, self.image, self.opaque)

    def cut(self, region: Dimensions, at: Dimensions) -> _Raster:
        box = (at[0], at[1], at[0] + region[0], at[1] + region[1])
        # The plan clamps every region inside the image (R9): nothing is
        # taken from beyond it, which Pillow would fill transparent.
        return _Raster(region, self.pixels().crop(box), self.opaque)

    def padded(self, size: Dimensions, at: Dimensions, color: RGBA) -> _Raster:
        padded = Image.new("RGBA", size, color)
        padded.alpha_composite(self.pixels(), at)
        return _Raster(size, padded, self.opaque and color[3] == 255)

    def turned(self, degrees: int) -> _Raster:
        image = self.pixels()
        if degrees in _TRANSPOSES:
            image = image.transpose(_TRANSPOSES[degrees])
            return _Raster(image.size, image, self.opaque)
        # Negative: Pillow turns counter-clockwise, Cloudinary clockwise. The
        # corners the turn uncovers are transparent.
        image = image.rotate(
            -degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=CLEAR
        )
        return _Raster(image.size, image, opaque=False)

    def mirrored(self) -> _Raster:
        return self._same(self.pixels().transpose(Image.Transpose.FLIP_LEFT_RIGHT))

    def bitonal(self) -> _Raster:
        image = self.pixels()
        # Cloudinary's e_blackwhite thresholds the luma at its middle.
        black_white = image.convert("L").point(lambda v: 255 if v >= 128 else 0)
        return self._same(
            Image.merge(
                "RGBA",
                (black_white, black_white, black_white, image.getchannel("A")),
            )
        )

    def grayscale(self) -> _Raster:
        image = self.pixels()
        gray = image.convert("L")
        return self._same(
            Image.merge("RGBA", (gray, gray, gray, image.getchannel("A")))
        )

    def negated(self) -> _Raster:
        image = self.pixels()
        r, g, b = ImageOps.invert(image.convert("RGB")).split()
        return self._same(Image.merge("RGBA", (r, g, b, image.getchannel("A"))))

    def faded(self, percent: int) -> _Raster:
        image = self.pixels()
        factor = percent / 100
        alpha = image.getchannel("A").point(lambda a: round(a * factor))
        image = image.copy()
        image.putalpha(alpha)
        return _Raster(self.size, image, self.opaque and percent >= 100)

    def placed(
        self, layer: _Raster, size: Dimensions, at: Dimensions, layer_at: Dimensions
    ) -> _Raster:
        image = self.pixels()
        overlay = layer.pixels()
        # Over an opaque canvas of the same size, anything placed stays opaque.
        opaque = self.opaque and size == image.size
        if size != image.size:
            # R18/R19: transparent where nothing was placed. Onto a transparent
            # canvas, a plain copy is exactly what compositing would give.
            canvas = Image.new("RGBA", size, CLEAR)
            canvas.paste(image, at)
        else:
            canvas = image.copy()
        if layer.opaque or _opaque(overlay):
            canvas.paste(overlay, layer_at)
        else:
            canvas.alpha_composite(overlay, layer_at)
        return _Raster(size, canvas, opaque)

    def _same(self, image: Image.Image) -> _Raster:
        return _Raster(self.size, image, self.opaque)


def _opaque(image: Image.Image) -> bool:
    return image.getchannel("A").getextrema() == (255, 255)


def compose(
    chain: RenderChain,
    base: Decoded,
    overlays: Mapping[str, Decoded],
    limits: Limits,
    *,
    alpha_output: bool,
) -> Decoded:
    """The chain rendered over decoded sources, by the walker that planned it:
    RGB where every pixel is known to be opaque, else RGBA."""

    def layer(key: str) -> _Raster:
        return _source(overlays[key])

    raster = walk(chain, _source(base), layer, limits, alpha_output=alpha_output)
    pixels = raster.pixels()
    if raster.opaque:
        # Encoded as such: a PNG a quarter smaller, no alpha plane in a WebP.
        pixels = pixels.convert("RGB")
    return Decoded(pixels, raster.size)


def _source(decoded: Decoded) -> _Raster:
    # `decode` leaves RGB (no alpha at all) or RGBA (alpha, maybe all opaque).
    return _Raster(decoded.size, decoded.image, decoded.image.mode == "RGB")


def load_codecs() -> None:
    """Load every format plugin of Pillow's, and the codec libraries they bind, now.

    Pillow loads them on its first open or save of a format it has not seen.
    Importing them, and loading libwebp's and libavif's shared objects, holds
    the GIL: done inside a first render, on a render thread, it stalled the
    event loop 175 ms (a progressive JPEG, whose save loads every plugin) or
    56 ms (a WebP). Done at start-up it costs about 45 ms, before any request.
    """
    Image.init()


# Pillow's JPEG encoder holds the GIL while it runs, so an encode on another
# thread stalls every thread for as long as one of its calls lasts. A
# progressive JPEG is written in one call at its end (a 4096x4096 photograph:
# 160 ms), a baseline one in chunks of ~10 ms: progressive only up to a
# megapixel (~8 ms).
_PROGRESSIVE_PIXELS: Final = 1 << 20


def encode(rendered: Decoded, extension: str, quality: int) -> bytes:
    """Encode without metadata: no EXIF, GPS or comments reach the output.

    The plan refuses an output its encoder cannot write (`ENCODERS`); should an
    encoder refuse one all the same, that is an `OutputTooLargeError` too.
    """
    pillow_format, _, keeps_alpha = OUTPUT_FORMATS[extension]
    image = rendered.image
    if not keeps_alpha and image.mode == "RGBA":
        if not _opaque(image):
            # R19: flatten onto white where nothing was placed.
            flat = Image.new("RGBA", image.size, WHITE)
            flat.alpha_composite(image)
            image = flat
        image = image.convert("RGB")
    out = io.BytesIO()
    options: dict[str, object] = {"quality": quality}
    if pillow_format == "JPEG":
        options["progressive"] = image.width * image.height <= _PROGRESSIVE_PIXELS
    elif pillow_format not in ("WEBP", "AVIF"):
        options = {}
    try:
        image.save(out, format=pillow_format, **options)
    # What each encoder raises for a side too long: libjpeg OSError, libwebp
    # ValueError, GIF's header OverflowError, libavif (past 65536) RuntimeError.
    except (OSError, ValueError, OverflowError, RuntimeError) as exc:
        name = ENCODERS[extension].name
        raise OutputTooLargeError(
            f"the {name} encoder cannot write this "
            f"{image.width}x{image.height} image: {exc}"
        ) from exc
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
