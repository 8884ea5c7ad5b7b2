"""Shared fixtures: the seed's catalog, settings, a token factory and an HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final, Protocol

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.catalog import Catalog
from signing import IssuerKey, mint
from transforms.cloudinary import CloudinaryAccount, CloudinaryAsset

# The ids, public ids and cloud of seed 004.
SEED_ISSUER: Final = "6b6fdb7b-65cb-4acf-97b9-d25eff795348"
SEED_IMAGE: Final = "133398b5-c4e1-4488-bbe1-81afd70546ae"
SEED_OVERLAY_1: Final = "b48fff71-a649-41dc-8f35-67229b3fd584"
SEED_OVERLAY_2: Final = "372083d9-8179-4161-af8c-6cbfecd9219a"
SEED_CLOUD: Final = "sadaasdasd"
SEED_TRANSFORMATIONS: Final = [
    {"crop": "fit", "width": 800},
    {"overlay": SEED_OVERLAY_1, "crop": "fit", "width": 800, "x": 800},
    {"overlay": SEED_OVERLAY_2, "crop": "fit", "width": 800, "x": 1200},
]
SEED_KEY: Final = IssuerKey(kid="seed-1", secret="s" * 32 + "-seed-issuer-secret")
API_SECRET: Final = "test-api-secret"

OTHER_ISSUER: Final = "0b6a4b55-7cc4-4a4f-9e0e-8f1a3f2f6f10"
OTHER_IMAGE: Final = "d9a8f3c2-5b1e-4c7d-8a6f-2e3b4c5d6e7f"
OTHER_KEY: Final = IssuerKey(kid="other-1", secret="o" * 32 + "-other-issuer")

Client = TestClient[web.Request, web.Application]


class Mint(Protocol):
    def __call__(
        self,
        transformations: object = ...,
        *,
        key: IssuerKey = ...,
        issuer: str = ...,
        ttl: float | None = ...,
        subject: str | None = ...,
        now: float | None = ...,
    ) -> str: ...


def render_settings(data_dir: Path) -> Settings:
    """Local rendering, no Cloudinary: what a fresh install runs."""
    return Settings(
        data_dir=data_dir,
        delivery="render",
        catalog_poll_interval=0.0,
        access_log=False,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        cloudinary=CloudinaryAccount(
            cloud_name=SEED_CLOUD, api_key="1234", api_secret=API_SECRET
        ),
        delivery="redirect",
        catalog_poll_interval=0.0,
        access_log=False,
    )


@pytest.fixture
def catalog(settings: Settings) -> Iterator[Catalog]:
    """The seed's issuer and images, plus a second issuer with an image of its own."""
    catalog = Catalog(settings.database)
    catalog.add_issuer(
        issuer_id=SEED_ISSUER, name="seed", secret=SEED_KEY.secret, kid=SEED_KEY.kid
    )
    for image_id, public_id in (
        (SEED_OVERLAY_1, "3bc669b21d8e"),
        (SEED_OVERLAY_2, "e199b75435bf"),
    ):
        catalog.add_image(
            issuer_id=SEED_ISSUER,
            image_id=image_id,
            cloudinary=CloudinaryAsset(public_id=public_id),
        )
    catalog.add_image(
        issuer_id=SEED_ISSUER,
        image_id=SEED_IMAGE,
        cloudinary=CloudinaryAsset(
            public_id="f7332109c6c5", version=123123, format="jpg"
        ),
    )
    catalog.add_issuer(
        issuer_id=OTHER_ISSUER, name="other", secret=OTHER_KEY.secret, kid=OTHER_KEY.kid
    )
    catalog.add_image(
        issuer_id=OTHER_ISSUER,
        image_id=OTHER_IMAGE,
        cloudinary=CloudinaryAsset(public_id="other", version=1, format="jpg"),
    )
    yield catalog
    catalog.close()


@pytest.fixture
def mint_token() -> Mint:
    def factory(
        transformations: object = SEED_TRANSFORMATIONS,
        *,
        key: IssuerKey = SEED_KEY,
        issuer: str = SEED_ISSUER,
        ttl: float | None = None,
        subject: str | None = None,
        now: float | None = None,
    ) -> str:
        return mint(
            key,
            issuer_id=issuer,
            transformations=transformations,
            ttl=ttl,
            subject=subject,
            now=now,
        )

    return factory


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, settings: Settings, catalog: Catalog
) -> Client:
    return await aiohttp_client(create_app(settings))
