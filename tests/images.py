"""Image helpers for tests: solid sources made in code, and similarity checks."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageChops, ImageStat

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def solid(
    size: tuple[int, int], color: tuple[int, ...], fmt: str = "PNG", **save: object
) -> bytes:
    mode = "RGBA" if len(color) == 4 else "RGB"
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format=fmt, **save)
    return out.getvalue()


def halves(
    size: tuple[int, int], left: tuple[int, int, int], right: tuple[int, int, int]
) -> bytes:
    """Left half one colour, right half another: shows which part a crop kept."""
    image = Image.new("RGB", size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def near(
    actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 8
) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))


def assert_image_similar(a: Image.Image, b: Image.Image, epsilon: float) -> None:
    """Pillow's test idea: mean absolute difference per channel below epsilon."""
    assert a.size == b.size, (a.size, b.size)
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    mean = sum(ImageStat.Stat(diff).mean) / 3
    assert mean <= epsilon, f"mean difference {mean:.2f} > {epsilon}"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: its length, type, data and a valid CRC."""
    crc = struct.pack(">I", zlib.crc32(kind + data))
    return struct.pack(">I", len(data)) + kind + data + crc


def pixel_bomb(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a few bytes of data behind it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def zero_png(width: int, height: int) -> bytes:
    """A valid RGBA PNG of `width` x `height` transparent pixels, built without
    holding them: a few hundred KB that decode to width * height * 4 bytes."""
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + 4 * width)  # filter byte, then the row
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


def png_with_data(
    width: int,
    height: int,
    *idat: bytes,
    colour: int = 2,
    depth: int = 8,
    interlace: int = 0,
) -> bytes:
    """A PNG whose IDAT chunks hold `idat`, whatever it is, under valid CRCs."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    palette = png_chunk(b"PLTE", bytes(range(256)) * 3) if colour == 3 else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + palette
        + b"".join(png_chunk(b"IDAT", data) for data in idat)
        + png_chunk(b"IEND", b"")
    )


def png_with_chunk(
    png: bytes, kind: bytes, body: bytes, *, after_pixels: bool = False
) -> bytes:
    """`png` with a chunk (under a valid CRC) before its image data, or after."""
    at = png.rindex(b"IEND") if after_pixels else png.index(b"IDAT")
    return png[: at - 4] + png_chunk(kind, body) + png[at - 4 :]


def palette_png_with_transparency(
    alphas: bytes, *, after_pixels: bool = False
) -> bytes:
    """A 16-colour palette PNG with `alphas` as its tRNS chunk."""
    out = io.BytesIO()
    Image.linear_gradient("L").resize((24, 16)).convert("RGB").quantize(16).save(
        out, format="PNG"
    )
    return png_with_chunk(out.getvalue(), b"tRNS", alphas, after_pixels=after_pixels)
