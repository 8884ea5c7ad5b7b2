"""Cloudinary assets: only safe public ids, formats and delivery types."""

from __future__ import annotations

import pytest

from transforms.cloudinary import CloudinaryAccount, CloudinaryAsset


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"public_id": "a,b"}, id="comma"),
        pytest.param({"public_id": "../x"}, id="dots"),
        pytest.param({"public_id": "a:b"}, id="colon"),
        pytest.param({"public_id": "x", "format": "svg"}, id="format"),
        pytest.param({"public_id": "x", "delivery_type": "fetch"}, id="fetch-type"),
        pytest.param({"public_id": "x", "version": 0}, id="version"),
    ],
)
def test_unsafe_asset_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each message differs
        CloudinaryAsset(**kwargs)  # type: ignore[arg-type]


def test_api_secret_stays_out_of_the_repr() -> None:
    account = CloudinaryAccount(cloud_name="c", api_key="1", api_secret="hush")
    assert "hush" not in repr(account)
