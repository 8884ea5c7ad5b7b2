"""The grammar and sizing of `/v3` and `/image`: tables, and the ladder's invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.catalog import ImageRecord, Original
from gateway.config import DEFAULT_PUBLIC_SIZES
from gateway.delivery.pictures import (
    parse_crop,
    parse_dimension,
    parse_extension,
    parse_size,
    public_picture,
    sized_picture,
)
from gateway.errors import AmbiguousParameterError, InvalidParameterError
from transforms import Limits
from transforms.model import Adjust, Fill, Limit

LIMITS = Limits()


def record(
    width: int = 3000, height: int = 2000, cap: int | None = None, *, known: bool = True
) -> ImageRecord:
    return ImageRecord(
        id="a1b2c3d4-0000-4000-8000-000000000001",
        issuer_id="6b6fdb7b-65cb-4acf-97b9-d25eff795348",
        cloudinary=None,
        original=Original(
            sha256="0" * 64,
            media_type="image/jpeg",
            file_size=1,
            width=width,
            height=height,
        )
        if known
        else None,
        original_filename=None,
        created_at="",
        updated_at="",
        is_public=True,
        max_unauthorised=cap,
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("100.100.jpg", (100, 100)),
        ("1.4096.jpg", (1, 4096)),
        ("640.480.jpg", (640, 480)),
    ],
)
def test_sizes(raw: str, expected: tuple[int, int]) -> None:
    assert parse_size(raw, LIMITS) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "4097.1.jpg",
        "0.1.jpg",
        "1.0.jpg",
        "1.1.jpeg",
        "1x1.jpg",
        "١٢.1.jpg",
        "1.1.jpg\n",
        "",
    ],
)
def test_bad_sizes_name_the_parameter(raw: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_size(raw, LIMITS)
    assert caught.value.parameter == "size"


def test_extensions() -> None:
    assert parse_extension("jpeg") == "jpg"
    assert parse_extension("avif") == "avif"
    for bad in ("", "JPG", "bmp", "jpg "):
        with pytest.raises(InvalidParameterError):
            parse_extension(bad)


def test_dimensions_and_crop() -> None:
    assert parse_dimension([], "w", LIMITS) is None
    assert parse_dimension(["12"], "w", LIMITS) == 12
    for bad in (["0"], ["012"], ["1e3"], ["4097"], ["²"]):
        with pytest.raises(InvalidParameterError):
            parse_dimension(bad, "w", LIMITS)
    with pytest.raises(AmbiguousParameterError):
        parse_dimension(["1", "2"], "w", LIMITS)
    assert parse_crop([]) is False
    assert parse_crop(["true"]) is True
    for bad in (["True"], ["yes"]):
        with pytest.raises(InvalidParameterError):
            parse_crop(bad)
    with pytest.raises(AmbiguousParameterError):
        parse_crop(["true", "true"])


def test_sized_is_a_limit_in_jpeg() -> None:
    picture = sized_picture(record(), 400, 400, LIMITS)
    assert picture.transformation.steps == (
        Adjust(resize=Limit(width=400, height=400)),
    )
    assert picture.extension == "jpg"
    assert picture.size == 400  # 3000x2000 into 400x400: 400x267


def test_an_unknown_original_is_judged_by_its_box() -> None:
    assert sized_picture(record(known=False), 400, 300, LIMITS).size == 400


def _resize(picture_steps: tuple[object, ...]) -> Limit | Fill:
    (step,) = picture_steps
    assert isinstance(step, Adjust)
    assert isinstance(step.resize, Limit | Fill)
    return step.resize


@given(
    width=st.none() | st.integers(1, 4096),
    height=st.none() | st.integers(1, 4096),
    crop=st.booleans(),
    cap=st.none() | st.integers(1, 5000),
)
def test_the_ladder_bounds_the_variants(
    width: int | None, height: int | None, crop: bool, cap: int | None
) -> None:
    image = record(cap=cap)
    picture = public_picture(
        image,
        width=width,
        height=height,
        crop=crop,
        extension="webp",
        ladder=DEFAULT_PUBLIC_SIZES,
        limits=LIMITS,
    )
    resize = _resize(picture.transformation.steps)
    box = max(resize.width or 0, resize.height or 0)
    # Only the ladder's sizes, or the cap, are ever asked of the renderer.
    assert box in DEFAULT_PUBLIC_SIZES or box == cap
    if width is None and height is None:
        return
    requested = max(width or 0, height or 0)
    if cap is not None and requested <= cap:
        assert box <= cap  # never across the cap
    if requested <= DEFAULT_PUBLIC_SIZES[-1] and (
        cap is None or requested > cap or box != cap
    ):
        assert box >= requested  # snapped up, never down
    # The aspect asked for is kept: each side is rounded (or kept at least 1)
    # once, so the cross products differ by at most the sum of the sides.
    if resize.width and resize.height and width and height:
        assert abs(resize.width * height - resize.height * width) <= width + height
    # A fill needs both sides; with one, the picture is fitted.
    assert isinstance(resize, Fill) == (
        crop and width is not None and height is not None
    )


def test_snapping_examples() -> None:
    def box(**kwargs: object) -> tuple[int | None, int | None]:
        picture = public_picture(
            record(cap=kwargs.pop("cap", None)),  # type: ignore[arg-type]
            extension="jpg",
            ladder=(100, 200, 400),
            limits=LIMITS,
            crop=False,
            **kwargs,  # type: ignore[arg-type]
        )
        resize = _resize(picture.transformation.steps)
        return resize.width, resize.height

    assert box(width=150, height=None) == (200, None)
    assert box(width=150, height=75) == (200, 100)
    assert box(width=500, height=None) == (400, None)  # past the top: the top
    assert box(width=150, height=None, cap=170) == (170, None)  # not across the cap
    assert box(width=180, height=None, cap=170) == (200, None)  # already over it
    assert box(width=None, height=None, cap=170) == (170, 170)
    assert box(width=None, height=None) == (400, 400)
