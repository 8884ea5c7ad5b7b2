"""The operator's base chain: Cloudinary's grammar, and its steps for the local renderer."""

from __future__ import annotations

import pytest

from transforms import (
    DEFAULT_BASE_CHAIN,
    Adjust,
    Delivery,
    Fit,
    Gravity,
    InvalidTransformError,
    Limits,
    Opacity,
    Pad,
    parse_base_chain,
    parse_render_base,
)

LIMITS = Limits()


@pytest.mark.parametrize(
    "chain",
    [
        pytest.param("l_fetch:aHR0cA", id="layer"),
        pytest.param("c_fit,w_10/u_evil", id="underlay"),
        pytest.param("fetch_x", id="fetch"),
        pytest.param("c_fit,w_10//", id="empty-component"),
        pytest.param("c_fit:w_10", id="colon"),
    ],
)
def test_unsafe_base_chain_is_refused(chain: str) -> None:
    with pytest.raises(InvalidTransformError):
        parse_base_chain(chain)


def test_default_base_chain_is_the_seeds() -> None:
    assert parse_base_chain(DEFAULT_BASE_CHAIN) == (
        "c_fit,h_1920,w_1920",
        "fl_attachment",
        "dpr_auto,q_auto,f_auto",
    )


def test_empty_base_chain_has_no_components() -> None:
    assert parse_base_chain("") == ()


def test_base_chain_fit_and_delivery_options_parse() -> None:
    steps, delivery = parse_render_base(DEFAULT_BASE_CHAIN, LIMITS)
    assert steps == (Adjust(resize=Fit(width=1920, height=1920)),)
    assert delivery == Delivery(attachment=True, format="auto", quality=None, dpr=1.0)


def test_base_chain_steps_parse_like_a_tokens() -> None:
    steps, delivery = parse_render_base(
        "c_pad,g_north,w_10/o_50/f_png,q_80,dpr_2", LIMITS
    )
    assert steps == (
        Adjust(resize=Pad(width=10, gravity=Gravity.NORTH)),
        Adjust(edits=(Opacity(percent=50),)),
    )
    assert delivery == Delivery(format="png", quality=80, dpr=2.0)


@pytest.mark.parametrize(
    "chain",
    [
        pytest.param("q_0", id="quality-zero"),
        pytest.param("q_101", id="quality-over-100"),
        pytest.param("q_good", id="quality-not-a-number"),
        pytest.param("dpr_5.0", id="dpr-over-4"),
        pytest.param("dpr_x", id="dpr-not-a-number"),
        pytest.param("w_ten", id="width-not-a-number"),
        pytest.param("fl_lossy", id="unknown-flag"),
        pytest.param("f_gif", id="unrenderable-format"),
        pytest.param("bo_1", id="unknown-key"),
    ],
)
def test_unrenderable_base_chain_names_the_base_chain(chain: str) -> None:
    with pytest.raises(InvalidTransformError) as caught:
        parse_render_base(chain, LIMITS)
    assert caught.value.parameter == "base_chain"


def test_invalid_base_chain_step_points_into_the_base_chain() -> None:
    with pytest.raises(InvalidTransformError) as caught:
        parse_render_base("c_fit,w_10/c_fit,g_north,w_10", LIMITS)
    assert caught.value.pointer == "/base_chain/1/gravity"
