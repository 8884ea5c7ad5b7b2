"""The size policy as a table: caller x image x size, on both kinds of path."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from gateway.catalog import ImageRecord, Original
from gateway.delivery.policy import Grant, decide, delivered_size
from gateway.errors import (
    CredentialRequiredError,
    ImageNotFoundError,
    RoleRequiredError,
)
from transforms import Limits, Transformation
from transforms.model import Adjust, Fill, Limit

ISSUER = "6b6fdb7b-65cb-4acf-97b9-d25eff795348"
OTHER = "0b6a4b55-7cc4-4a4f-9e0e-8f1a3f2f6f10"


@dataclass(frozen=True)
class Caller:
    issuer_id: str
    roles: frozenset[str] = frozenset()


def image(
    *, public: bool = True, cap: int | None = 400, roles: frozenset[str] = frozenset()
) -> ImageRecord:
    return ImageRecord(
        id="a1b2c3d4-0000-4000-8000-000000000001",
        issuer_id=ISSUER,
        cloudinary=None,
        original=Original(
            sha256="0" * 64,
            media_type="image/jpeg",
            file_size=1,
            width=1600,
            height=1200,
        ),
        original_filename=None,
        created_at="",
        updated_at="",
        is_public=public,
        max_unauthorised=cap,
        roles=roles,
    )


ANONYMOUS = None
OWNER = Caller(ISSUER)
STAFF = Caller(ISSUER, frozenset({"staff"}))
VISITOR = Caller(ISSUER, frozenset({"visitor"}))
STRANGER = Caller(OTHER, frozenset({"staff"}))
ROLES = frozenset({"staff", "editor"})


@pytest.mark.parametrize(
    ("caller", "record", "size", "outcome"),
    [
        # Anonymous: public images only, up to the cap.
        (ANONYMOUS, image(), 400, Grant.ANYONE),
        (ANONYMOUS, image(), 401, CredentialRequiredError),
        (ANONYMOUS, image(cap=None), 4000, Grant.ANYONE),
        (ANONYMOUS, image(cap=0), 1, CredentialRequiredError),
        (ANONYMOUS, image(public=False), 10, ImageNotFoundError),
        # Another issuer's caller is anonymous here, but authenticated: 403.
        (STRANGER, image(), 400, Grant.ANYONE),
        (STRANGER, image(roles=ROLES), 401, RoleRequiredError),
        (STRANGER, image(public=False), 10, ImageNotFoundError),
        # The issuer's own: no roles on the image, any size.
        (OWNER, image(), 401, Grant.CALLER),
        (OWNER, image(public=False), 4000, Grant.CALLER),
        (OWNER, image(), 400, Grant.ANYONE),
        # Roles on the image: up to the cap without; above, roles must meet.
        (OWNER, image(roles=ROLES), 400, Grant.ANYONE),
        (OWNER, image(roles=ROLES), 401, RoleRequiredError),
        (VISITOR, image(roles=ROLES), 401, RoleRequiredError),
        (STAFF, image(roles=ROLES), 401, Grant.CALLER),
        (STAFF, image(roles=ROLES, cap=0), 1, Grant.CALLER),
        (VISITOR, image(roles=ROLES, cap=0), 1, RoleRequiredError),
        (VISITOR, image(roles=ROLES, cap=None), 4000, Grant.ANYONE),  # no cap: anyone
        (VISITOR, image(roles=ROLES, public=False), 400, Grant.CALLER),
    ],
)
def test_public_path(
    caller: Caller | None,
    record: ImageRecord,
    size: int,
    outcome: Grant | type[Exception],
) -> None:
    if isinstance(outcome, Grant):
        assert decide(record, caller, size, anonymous_path=True) is outcome
    else:
        with pytest.raises(outcome):
            decide(record, caller, size, anonymous_path=True)


@pytest.mark.parametrize(
    ("caller", "record", "size", "outcome"),
    [
        (STRANGER, image(), 10, ImageNotFoundError),  # another issuer's: 404
        (OWNER, image(), 4000, Grant.CALLER),
        (OWNER, image(public=False, roles=ROLES), 400, Grant.CALLER),
        (OWNER, image(public=False, roles=ROLES), 401, RoleRequiredError),
        (STAFF, image(public=False, roles=ROLES), 4000, Grant.CALLER),
    ],
)
def test_credential_path(
    caller: Caller,
    record: ImageRecord,
    size: int,
    outcome: Grant | type[Exception],
) -> None:
    if isinstance(outcome, Grant):
        assert decide(record, caller, size, anonymous_path=False) is outcome
    else:
        with pytest.raises(outcome):
            decide(record, caller, size, anonymous_path=False)


@pytest.mark.parametrize(
    ("resize", "longest"),
    [
        (Limit(width=400, height=400), 400),  # 1600x1200 fits as 400x300
        (Limit(width=300, height=4000), 300),  # width binds: 300x225
        (Limit(width=4000, height=4000), 1600),  # never enlarged
        (Fill(width=100, height=500), 500),  # exactly the box
    ],
)
def test_the_size_is_the_longest_side_delivered(
    resize: Limit | Fill, longest: int
) -> None:
    chain = Transformation(steps=(Adjust(resize=resize),))
    assert delivered_size(image(), chain, Limits()) == longest


def test_without_dimensions_the_size_is_unknown() -> None:
    unknown = dataclasses.replace(image(), original=None)
    chain = Transformation(steps=(Adjust(resize=Limit(width=10, height=10)),))
    assert delivered_size(unknown, chain, Limits()) is None


@pytest.mark.parametrize(
    ("caller", "record", "size", "anonymous_path", "detail", "parameter"),
    [
        (ANONYMOUS, image(public=False), 1, True, "no such image", "image_id"),
        (STRANGER, image(), 1, False, "no such image", "image_id"),
        (
            ANONYMOUS,
            image(cap=0),
            1,
            True,
            "this image is not served without a credential",
            None,
        ),
        (
            ANONYMOUS,
            image(cap=400),
            401,
            True,
            "without a credential this image is served up to 400 px",
            None,
        ),
        (
            STRANGER,
            image(cap=400),
            401,
            True,
            "to another issuer's caller this image is served up to 400 px",
            None,
        ),
        (
            STRANGER,
            image(cap=0),
            1,
            True,
            "this image is not served to another issuer's caller",
            None,
        ),
        (
            VISITOR,
            image(cap=400, roles=ROLES),
            401,
            True,
            "over 400 px this image needs one of its roles",
            None,
        ),
    ],
)
def test_each_refusal_says_why_and_names_its_parameter(
    caller: Caller | None,
    record: ImageRecord,
    size: int,
    anonymous_path: bool,
    detail: str,
    parameter: str | None,
) -> None:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the table says which
        decide(record, caller, size, anonymous_path=anonymous_path)
    error = caught.value
    assert getattr(error, "detail", None) == detail
    assert getattr(error, "parameter", None) == parameter
