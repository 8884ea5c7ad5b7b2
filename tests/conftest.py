"""Shared fixtures: the seed's catalog, settings, a token factory and an HTTP client.

The catalog is SQLite unless a module runs its tests against both stores
(`pytestmark = BOTH_CATALOGS`): then each runs on SQLite and on a database
of its own in a throwaway PostgreSQL cluster, started once per session.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Final, Protocol

import asyncpg
import cachetools
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.catalog import CatalogStore, open_catalog
from gateway.config import CatalogSettings, ServerSettings, UpstreamSettings
from gateway.originals.s3 import open_s3_store
from scripts import seed004
from scripts.pg_cluster import Cluster, ClusterError, start_cluster
from signing import IssuerKey, mint
from signing.jws import KeyMemo
from tests.s3 import S3Server, moto_server, new_bucket_name, s3_settings
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

# Runs a module's (or a test's) catalog-using tests against both stores.
BOTH_CATALOGS: Final = pytest.mark.both_catalogs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    definition = metafunc.definition
    chosen = any(  # a test may name its one catalog itself
        "backend" in str(mark.args[0])
        for mark in definition.iter_markers("parametrize")
    )
    if (
        "backend" in metafunc.fixturenames
        and definition.get_closest_marker("both_catalogs")
        and not chosen
    ):
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


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
    database_url: str | None = None,
) -> Settings:
    """Tests' settings: no access log, catalog changes noticed at once; with an
    account, redirects to Cloudinary, else local rendering (a fresh install)."""
    return Settings(
        data_dir=data_dir,
        server=ServerSettings(access_log=False),
        catalog=CatalogSettings(poll_interval=poll_interval, database_url=database_url),
        upstream=UpstreamSettings(
            cloudinary=cloudinary,
            delivery="render" if cloudinary is None else "redirect",
        ),
    )


def render_settings(data_dir: Path, database_url: str | None = None) -> Settings:
    """Local rendering, no Cloudinary: what a fresh install runs."""
    return make_settings(data_dir, database_url=database_url)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster for the session; skipped (failed under CI) without one."""
    try:
        cluster = start_cluster()
    except ClusterError as exc:
        reason = f"PostgreSQL could not be started: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI must run the PostgreSQL tests)")
        pytest.skip(reason)
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
async def postgres_url(postgres_cluster: Cluster) -> AsyncIterator[str]:
    """A new, empty schema in the session's cluster, dropped afterwards."""
    schema = f"test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(postgres_cluster.url())
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
    finally:
        await admin.close()
    yield postgres_cluster.url(schema=schema)
    admin = await asyncpg.connect(postgres_cluster.url())
    try:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await admin.close()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Which catalog: SQLite, unless parametrised (`BOTH_CATALOGS`)."""
    name: str = getattr(request, "param", "sqlite")
    return name


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    if backend == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return make_settings(
        tmp_path,
        cloudinary=CloudinaryAccount(
            cloud_name=SEED_CLOUD, api_key="1234", api_secret=API_SECRET
        ),
        database_url=database_url,
    )


@pytest.fixture
async def catalog(settings: Settings) -> AsyncIterator[CatalogStore]:
    """The seed's issuer and images, plus a second issuer with an image of its own."""
    catalog = await open_catalog(settings)
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
    aiohttp_client: AiohttpClient, settings: Settings, catalog: CatalogStore
) -> Client:
    return await aiohttp_client(create_app(settings))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One moto server for the whole run; each test takes a bucket of its own."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture
async def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket on the test server."""
    name = new_bucket_name()
    settings = s3_settings(Settings(), s3_server, name)
    async with open_s3_store(settings.store, read_timeout=10) as store:
        await store.client.create_bucket(Bucket=name)
    return name
