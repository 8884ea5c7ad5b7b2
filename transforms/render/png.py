"""A PNG's image data checked as its decoder will read it, without building the image.

Pillow's `verify()` checks a PNG's chunks and their CRCs, not what they
hold: IDAT data that is no zlib stream, or one cut short under valid
checksums, passes it and fails every decode. Decoding the whole image to
find out costs its pixels (a few hundred KB of PNG can declare 200 MB).
`check_png` inflates the IDAT stream a bounded piece at a time instead,
keeping none of it, and refuses what Pillow's decoder refuses (a zlib
error, a row filter other than 0-4, rows missing) by the PNG specification
(https://www.w3.org/TR/png-3/: 7.3 filtering, 8.2 Adam7, 10 compression). It
also refuses the chunks whose contents Pillow fails to decode with (11.3.6.2
fcTL, 11.3.2.1 tRNS).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Final

from transforms.errors import SourceImageError

__all__ = ["check_png"]

_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
# Colour type -> samples per pixel (PNG 11.2.2, IHDR).
_SAMPLES: Final = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: first column and row, column and row steps (PNG 8.2).
_ADAM7: Final = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_FILTERS: Final = bytes(range(5))  # None, Sub, Up, Average, Paeth
_PALETTE: Final = 256  # entries at most (PNG 11.2.3, PLTE)
# Colour type -> the bytes of its one transparent colour in tRNS (11.3.2.1):
# a grey level, or red, green and blue, two bytes each.
_TRANSPARENT_COLOUR: Final = {0: 2, 2: 6}
# Inflated at most this much at a time: the check's memory, whatever the image.
_PIECE: Final = 1 << 20
# Data past the rows is ignored by decoders; inflated this far (a bad
# checksum at the stream's end shows), and no further (a zlib bomb).
_BEYOND: Final = 1 << 20


def check_png(data: bytes) -> None:
    """Refuse a PNG whose image data its decoder would refuse (`SourceImageError`).

    `data` is a PNG Pillow has opened: its signature and IHDR are sound.
    """
    header, idat = _image_data(data)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    samples = _SAMPLES.get(colour)
    if samples is None:
        raise SourceImageError(f"the PNG's colour type {colour} is not defined")
    _check_chunks(data, (width, height), colour)
    rows = list(_rows(width, height, depth * samples, interlace))
    expected = sum(stride * count for _, stride, count in rows)
    inflater = zlib.decompressobj()
    done = 0
    try:
        for chunk in idat:
            pending: bytes | memoryview = chunk
            while pending and done <= expected + _BEYOND and not inflater.eof:
                piece = inflater.decompress(pending, _PIECE)
                _check_filters(piece, done, rows)
                done += len(piece)
                pending = inflater.unconsumed_tail
        while done < expected and not inflater.eof:  # output zlib still holds
            piece = inflater.decompress(b"", _PIECE)
            if not piece:
                break
            _check_filters(piece, done, rows)
            done += len(piece)
    except zlib.error as exc:
        raise SourceImageError(
            f"the PNG's image data is corrupt (not a valid zlib stream: {exc})"
        ) from exc
    if done < expected:
        raise SourceImageError(
            f"the PNG's image data is truncated: {done} of {expected} bytes"
        )


def _check_chunks(data: bytes, size: tuple[int, int], colour: int) -> None:
    """Refuse the chunks Pillow reads and then fails every decode with.

    An fcTL before the image data frames the default image of an APNG, and
    must frame all of it (PNG 11.3.6.2): Pillow decodes the image data into
    the frame it names, which a zero-sized or smaller one makes fail or
    disagree with the rows checked above. A palette has at most 256 entries
    (11.2.3) and tRNS one alpha value per entry at most (11.3.2.1); for a
    grey or RGB image, tRNS holds one colour (2 or 6 bytes). Pillow reads
    tRNS before the image data or after it (as a decode does), and fails
    with a longer palette's or a shorter colour's. A PNG has one eXIf at
    most (5.6): the probe reads the first, before the image data, and a
    decode the last, after it, so two would have ingest and render disagree
    on the image's orientation.
    """
    pixels = False
    exif = 0
    for at, kind, length in _chunks(data):
        if kind == b"IEND":
            break
        if kind == b"IDAT":
            pixels = True
        elif kind == b"fcTL" and not pixels and length >= 26 and at + 28 <= len(data):
            # Sequence number, then width, height, x and y offsets.
            frame = struct.unpack_from(">IIII", data, at + 12)
            if frame != (*size, 0, 0):
                raise SourceImageError(
                    "the APNG's default image is framed as "
                    f"{frame[0]}x{frame[1]} at {frame[2]},{frame[3]}, "
                    f"not as the whole {size[0]}x{size[1]} image"
                )
        elif kind == b"eXIf":
            exif += 1
            if exif > 1:
                raise SourceImageError(
                    "the PNG has more than one EXIF block (eXIf chunk); "
                    "at most one is allowed"
                )
        elif kind == b"tRNS":
            if colour == 3 and length > _PALETTE:
                raise SourceImageError(
                    f"the PNG's transparency (tRNS) has {length} entries; "
                    f"a palette has at most {_PALETTE}"
                )
            if length < (needed := _TRANSPARENT_COLOUR.get(colour, 0)):
                raise SourceImageError(
                    f"the PNG's transparency (tRNS) is {length} bytes; "
                    f"its colour takes {needed}"
                )


def _image_data(data: bytes) -> tuple[bytes, Iterator[memoryview]]:
    """IHDR's fields and the consecutive IDAT chunks' data, as decoders read them.

    The chunks are read as the stream is inflated, never listed: a small file
    of 200,000 empty IDAT chunks would otherwise hold a view of each.
    """
    for at, kind, length in _chunks(data):  # IHDR first; anything before skipped
        if kind == b"IHDR":
            header = data[at + 8 : at + 8 + min(length, 13)]
            if len(header) == 13:
                return header, _idat(data, at + 12 + length)
            break
    raise SourceImageError("the PNG has no image header (IHDR)")


def _chunks(data: bytes, at: int = len(_SIGNATURE)) -> Iterator[tuple[int, bytes, int]]:
    """Each chunk's position, type and data length from `at`, read as asked."""
    while at + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        yield at, kind, length
        at += 12 + length


def _idat(data: bytes, start: int) -> Iterator[memoryview]:
    view = memoryview(data)
    seen = False
    for at, kind, length in _chunks(data, start):
        body = view[at + 8 : at + 8 + length]
        if len(body) < length:
            raise SourceImageError(
                "the file is a truncated PNG image: a chunk is cut short"
            )
        if kind == b"IDAT":
            seen = True
            yield body
        elif seen or kind == b"IEND":
            break  # the image data ends at the first other chunk after it
    if not seen:
        raise SourceImageError("the PNG has no image data (IDAT)")


def _rows(
    width: int, height: int, bits: int, interlace: int
) -> Iterator[tuple[int, int, int]]:
    """(offset, row length with its filter byte, rows) of each pass, in order."""
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    offset = 0
    for x0, y0, dx, dy in passes:
        columns = (width - x0 + dx - 1) // dx
        count = (height - y0 + dy - 1) // dy
        if columns <= 0 or count <= 0:
            continue  # an empty pass has no rows, not even filter bytes
        stride = 1 + (columns * bits + 7) // 8
        yield offset, stride, count
        offset += stride * count


def _check_filters(piece: bytes, at: int, rows: list[tuple[int, int, int]]) -> None:
    """Every row's filter byte in `piece` (the stream's bytes from `at`) is 0-4."""
    end = at + len(piece)
    for offset, stride, count in rows:
        low, high = max(at, offset), min(end, offset + stride * count)
        if low >= high:
            continue
        first = offset + -(-(low - offset) // stride) * stride
        if first < high and piece[first - at : high - at : stride].translate(
            None, _FILTERS
        ):
            raise SourceImageError(
                "the PNG's image data is corrupt (a row filter other than 0-4)"
            )
