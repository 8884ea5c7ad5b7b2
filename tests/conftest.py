"""Shared fixtures: the seed's catalog, settings, a token factory and an HTTP client."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final, Protocol

import cachetools
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.catalog import SqliteCatalog
from gateway.config import CatalogSettings, ServerSettings, UpstreamSettings
from scripts import seed004
from signing import IssuerKey, mint
from signing.jws import KeyMemo
from transforms.cloudinary import CloudinaryAccount, CloudinaryAsset

# The ids, public ids and cloud of seed 004.
SEED_ISSUER: Final = seed004.ISSUER
SEED_IMAGE: Final = seed004.IMAGE
SEED_OVERLAY_1: Final = seed004.LAYER_1
SEED_OVERLAY_2: Final = seed004.LAYER_2
SEED_CLOUD: Final = seed004.CLOUD_NAME
SEED_TRANSFORMATIONS: Final = seed004.tiling()
SEED_KEY: Final = IssuerKey(kid="seed-1", secret="s" * 32 + "-seed-issuer-secret")
API_SECRET: Final = "test-api-secret"

OTHER_ISSUER: Final = "0b6a4b55-7cc4-4a4f-9e0e-8f1a3f2f6f10"
OTHER_IMAGE: Final = "d9a8f3c2-5b1e-4c7d-8a6f-2e3b4c5d6e7f"
OTHER_KEY: Final = IssuerKey(kid="other-1", secret="o" * 32 + "-other-issuer")

Client = TestClient[web.Request, web.Application]

# Packages whose module-level memos a test must not inherit from another test.
_MEMO_PACKAGES: Final = frozenset({"gateway", "signing", "transforms"})


def forget_module_memos() -> int:
    """Empty every memo held at module level in our packages; the number emptied.

    Memos are `functools` caches, `cachetools` caches and `KeyMemo`s. A test that
    finds one warm skips the code that filled it: under mutation testing, each
    mutant runs in a process forked after the whole suite has run once, so a
    warm memo would answer with the unmutated code's result.
    """
    emptied: set[int] = set()
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] not in _MEMO_PACKAGES:
            continue
        for value in list(vars(module).values()):
            if id(value) in emptied:
                continue
            if isinstance(value, cachetools.Cache):
                value.clear()
            elif isinstance(value, KeyMemo):
                value.keep_only(())
            elif callable(value) and hasattr(value, "cache_info"):
                value.cache_clear()
            else:
                continue
            emptied.add(id(value))
    return len(emptied)


@pytest.fixture(autouse=True)
def _fresh_module_memos() -> None:
    forget_module_memos()


def _cost(item: pytest.Item) -> int:
    """Unit tests first, then property tests, then the HTTP tests."""
    if item.nodeid.startswith("tests/gateway/"):
        return 2
    return 1 if "properties" in item.nodeid else 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A mutation run (mutmut sets MUTANT_UNDER_TEST) stops at a mutant's first
    # failing test: the fastest tests go first, in their usual order otherwise.
    if os.environ.get("MUTANT_UNDER_TEST"):
        items.sort(key=_cost)


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


def make_settings(
    data_dir: Path,
    *,
    cloudinary: CloudinaryAccount | None = None,
    poll_interval: float = 0.0,
) -> Settings:
    """Tests' settings: no access log, catalog changes noticed at once; with an
    account, redirects to Cloudinary, else local rendering (a fresh install)."""
    return Settings(
        data_dir=data_dir,
        server=ServerSettings(access_log=False),
        catalog=CatalogSettings(poll_interval=poll_interval),
        upstream=UpstreamSettings(
            cloudinary=cloudinary,
            delivery="render" if cloudinary is None else "redirect",
        ),
    )


def render_settings(data_dir: Path) -> Settings:
    """Local rendering, no Cloudinary: what a fresh install runs."""
    return make_settings(data_dir)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        cloudinary=CloudinaryAccount(
            cloud_name=SEED_CLOUD, api_key="1234", api_secret=API_SECRET
        ),
    )


@pytest.fixture
async def catalog(settings: Settings) -> AsyncIterator[SqliteCatalog]:
    """The seed's issuer and images, plus a second issuer with an image of its own."""
    catalog = await SqliteCatalog.open(settings.database)
    await catalog.add_issuer(
        issuer_id=SEED_ISSUER, name="seed", secret=SEED_KEY.secret, kid=SEED_KEY.kid
    )
    await seed004.add_assets(catalog)
    await catalog.add_issuer(
        issuer_id=OTHER_ISSUER, name="other", secret=OTHER_KEY.secret, kid=OTHER_KEY.kid
    )
    await catalog.add_image(
        issuer_id=OTHER_ISSUER,
        image_id=OTHER_IMAGE,
        cloudinary=CloudinaryAsset(public_id="other", version=1, format="jpg"),
    )
    yield catalog
    await catalog.close()


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
    aiohttp_client: AiohttpClient, settings: Settings, catalog: SqliteCatalog
) -> Client:
    return await aiohttp_client(create_app(settings))
