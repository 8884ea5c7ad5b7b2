"""A PNG's image data checked as its decoder reads it, without its pixels."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from typing import Final

import pytest
from PIL import Image

from tests.images import (
    RED,
    palette_png_with_transparency,
    png_chunk,
    png_with_chunk,
    png_with_data,
    solid,
    zero_png,
)
from transforms import SourceImageError
from transforms.render.png import check_png

# 10x4 RGB: each row a filter byte (0) and 30 bytes.
ROWS: Final = b"".join(b"\0" + bytes(range(y, y + 30)) for y in range(4))
STREAM: Final = zlib.compress(ROWS)


def exif_chunk(orientation: int) -> bytes:
    """An eXIf chunk's data: the TIFF block, without JPEG's "Exif" prefix."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes().removeprefix(b"Exif\0\0")


def adam7(width: int, height: int) -> bytes:
    """The raw rows of an interlaced 8-bit RGB image (PNG 8.2), filter 0."""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
              (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))  # fmt: skip
    raw = b""
    for x0, y0, dx, dy in passes:
        columns = (width - x0 + dx - 1) // dx
        rows = (height - y0 + dy - 1) // dy
        if columns > 0 and rows > 0:
            raw += (b"\0" + b"\x80" * 3 * columns) * rows
    return raw


def pillow_png(mode: str, **options: object) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((13, 7), 50).convert(mode).save(out, format="PNG", **options)
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(png_with_data(10, 4, STREAM), id="one-idat"),
        pytest.param(
            png_with_data(10, 4, STREAM[:5], STREAM[5:9], b"", STREAM[9:]),
            id="split-over-idats",
        ),
        pytest.param(png_with_data(10, 4, STREAM + b"junk"), id="after-the-stream"),
        pytest.param(
            png_with_data(10, 4, zlib.compress(ROWS + ROWS)), id="more-rows-than-needed"
        ),
        pytest.param(
            png_with_data(9, 9, zlib.compress(adam7(9, 9)), interlace=1), id="adam7"
        ),
        pytest.param(
            png_with_data(1, 1, zlib.compress(adam7(1, 1)), interlace=1),
            id="adam7-empty-passes",
        ),
        *(
            pytest.param(pillow_png(mode, **options), id=f"pillow-{mode}{options}")
            for mode, options in (
                ("1", {}),
                ("L", {}),
                ("LA", {}),
                ("P", {"bits": 2}),
                ("P", {}),
                ("RGB", {}),
                ("RGBA", {}),
                ("I;16", {}),
            )
        ),
        pytest.param(zero_png(300, 200), id="zeros"),
    ],
)
def test_image_data_a_decoder_reads_is_accepted(data: bytes) -> None:
    Image.open(io.BytesIO(data)).load()  # the premise: Pillow decodes it
    check_png(data)


def test_an_animated_pngs_default_image_is_checked_and_accepted() -> None:
    frames = [solid((20, 10), RED, "PNG"), solid((20, 10), (0, 0, 255), "PNG")]
    images = [Image.open(io.BytesIO(frame)) for frame in frames]
    out = io.BytesIO()
    images[0].save(out, format="PNG", save_all=True, append_images=images[1:])
    check_png(out.getvalue())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(png_with_data(10, 4, b"not zlib data"), "corrupt", id="not-zlib"),
        pytest.param(
            png_with_data(10, 4, STREAM[: len(STREAM) // 2]),
            "truncated",
            id="zlib-cut-short",
        ),
        pytest.param(
            png_with_data(10, 4, zlib.compress(ROWS[:31] + b"\x05" + ROWS[32:])),
            "row filter",
            id="filter-5",
        ),
        pytest.param(
            png_with_data(10, 4, STREAM[:-4] + b"\0\0\0\0"), "corrupt", id="checksum"
        ),
        pytest.param(png_with_data(10, 4), "no image data", id="no-idat"),
        pytest.param(
            png_with_data(9, 9, zlib.compress(adam7(9, 9)[:-1]), interlace=1),
            "truncated",
            id="adam7-one-byte-short",
        ),
        pytest.param(
            png_with_data(1, 1, zlib.compress(b"\x06\0\0\0"), interlace=1),
            "row filter",
            id="adam7-filter-6",
        ),
    ],
)
def test_image_data_a_decoder_refuses_is_refused(data: bytes, reason: str) -> None:
    # The premise: Pillow cannot decode it either.
    with pytest.raises(OSError, match=r"data stream|truncated|cannot load"):
        Image.open(io.BytesIO(data)).load()
    with pytest.raises(SourceImageError) as caught:
        check_png(data)
    assert reason in caught.value.detail


@pytest.mark.parametrize("after_pixels", [False, True], ids=["before", "after"])
def test_a_palettes_transparency_past_256_entries_is_refused(
    after_pixels: bool,
) -> None:
    data = palette_png_with_transparency(b"\x80" * 257, after_pixels=after_pixels)
    # The premise: every decode of it fails, when the palette is converted.
    with pytest.raises(ValueError, match="palette index out of range"):
        Image.open(io.BytesIO(data)).convert("RGBA")
    with pytest.raises(SourceImageError, match=r"tRNS\) has 257 entries"):
        check_png(data)


def _solid_png(mode: str) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (13, 7), 90 if mode == "L" else (90, 20, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("after_pixels", [False, True], ids=["before", "after"])
@pytest.mark.parametrize(
    ("mode", "colour", "accepted"),
    [
        ("L", b"", False),
        ("L", b"\x01", False),
        ("L", b"\x00\x5a", True),
        ("RGB", b"\x00\x5a", False),
        ("RGB", b"\x00\x5a\x00\x14\x00", False),
        ("RGB", b"\x00\x5a\x00\x14\x00\xc8", True),
    ],
)
def test_a_grey_or_rgb_transparent_colour_cut_short_is_refused(
    mode: str, colour: bytes, accepted: bool, after_pixels: bool
) -> None:
    """Grey's transparent colour is 2 bytes, RGB's 6: Pillow fails to read
    a shorter one, after the image data at every decode."""
    data = png_with_chunk(_solid_png(mode), b"tRNS", colour, after_pixels=after_pixels)
    if accepted:
        Image.open(io.BytesIO(data)).load()  # the premise
        check_png(data)
        return
    with pytest.raises((ValueError, OSError, struct.error)):  # the premise
        Image.open(io.BytesIO(data)).load()
    with pytest.raises(SourceImageError, match=r"tRNS\) is \d bytes; its colour"):
        check_png(data)


@pytest.mark.parametrize(
    "alphas",
    [
        pytest.param(b"\x80" * 17, id="one-past-a-16-colour-palette"),
        pytest.param(b"\x80" * 256, id="256"),
    ],
)
def test_a_palettes_transparency_pillow_applies_is_accepted(alphas: bytes) -> None:
    data = palette_png_with_transparency(alphas)
    Image.open(io.BytesIO(data)).convert("RGBA")  # the premise
    check_png(data)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param((0, 0, 0, 0), id="empty"),
        pytest.param((6, 3, 0, 0), id="smaller"),
        pytest.param((6, 3, 7, 4), id="offset"),
    ],
)
def test_an_apngs_default_image_framed_as_less_than_the_image_is_refused(
    frame: tuple[int, int, int, int],
) -> None:
    """Pillow decodes the image data into that frame: an empty one fails
    every decode, and the rows checked would not be the rows it reads."""
    control = struct.pack(">5I2HBB", 0, *frame, 1, 10, 0, 0)
    data = png_with_chunk(pillow_png("RGB"), b"fcTL", control)
    assert Image.open(io.BytesIO(data)).info["bbox"] != (0, 0, 13, 7)  # the premise
    with pytest.raises(SourceImageError, match="default image is framed as"):
        check_png(data)


def test_a_second_exif_block_is_refused() -> None:
    """Pillow's open reads the first, its decode the last: ingest and render
    would disagree on the orientation, and so on the image's size."""
    turned = png_with_chunk(pillow_png("RGB"), b"eXIf", exif_chunk(6))
    data = png_with_chunk(turned, b"eXIf", exif_chunk(1), after_pixels=True)
    with pytest.raises(SourceImageError, match="more than one EXIF block"):
        check_png(data)


@pytest.mark.parametrize("after_pixels", [False, True], ids=["before", "after"])
def test_one_exif_block_before_or_after_the_image_data_is_accepted(
    after_pixels: bool,
) -> None:
    data = png_with_chunk(
        pillow_png("RGB"), b"eXIf", exif_chunk(6), after_pixels=after_pixels
    )
    assert Image.open(io.BytesIO(data)).getexif()[0x0112] == 6  # the premise
    check_png(data)


def test_a_whole_stream_of_fewer_bytes_than_the_rows_is_refused() -> None:
    """Stricter than Pillow, which leaves the missing rows black: the file is
    truncated all the same (PNG 10.1: the stream holds every row)."""
    with pytest.raises(SourceImageError) as caught:
        check_png(png_with_data(10, 4, zlib.compress(ROWS[:62])))
    assert caught.value.detail == "the PNG's image data is truncated: 62 of 124 bytes"


@pytest.mark.parametrize(
    ("beyond", "refused"),
    [pytest.param(1000, True, id="near"), pytest.param(8 << 20, False, id="far")],
)
def test_a_stream_is_inflated_at_most_a_megabyte_past_its_rows(
    beyond: int, refused: bool
) -> None:
    """A broken checksum shows near the rows; 8 MB past them (a zlib bomb's
    place) it is never reached, as Pillow never reads it."""
    stream = zlib.compress(ROWS + b"\0" * beyond)
    data = png_with_data(10, 4, stream[:-4] + bytes(4 * [stream[-1] ^ 0xFF]))
    if refused:
        with pytest.raises(SourceImageError):
            check_png(data)
    else:
        check_png(data)


def test_a_chunk_cut_short_is_refused_as_truncated() -> None:
    whole = png_with_data(10, 4, STREAM)
    with pytest.raises(SourceImageError) as caught:
        check_png(whole[:-20])
    assert caught.value.detail == (
        "the file is a truncated PNG image: a chunk is cut short"
    )


def test_many_empty_image_data_chunks_cost_no_memory() -> None:
    """200,000 empty IDAT chunks (2.4 MB) held a view of each: 38 MB."""
    real = solid((64, 64), RED, "PNG")
    iend = real.rindex(b"IEND") - 4
    empty = png_chunk(b"IDAT", b"")
    first_idat = real.index(b"IDAT") - 4
    data = real[:first_idat] + empty * 200_000 + real[first_idat:iend] + real[iend:]
    tracemalloc.start()
    try:
        check_png(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000, peak
