"""Fixtures for the /v1 catalog API: two issuers with API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway import Settings
from gateway.catalog import CatalogStore, open_catalog
from gateway.originals.ingest import add_original
from gateway.originals.local import LocalOriginalStore
from tests.conftest import (
    OTHER_IMAGE,
    OTHER_ISSUER,
    OTHER_KEY,
    SEED_ISSUER,
    SEED_KEY,
    render_settings,
)
from tests.gateway.http.support import Keys
from tests.images import GREEN, solid


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return render_settings(tmp_path, database_url)


@pytest.fixture
async def catalog(settings: Settings) -> AsyncIterator[CatalogStore]:
    catalog = await open_catalog(settings)
    await catalog.add_issuer(
        issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid=SEED_KEY.kid
    )
    await catalog.add_issuer(
        issuer_id=OTHER_ISSUER, secret=OTHER_KEY.secret, kid=OTHER_KEY.kid
    )
    await add_original(
        catalog,
        LocalOriginalStore(settings.originals),
        settings.limits,
        issuer_id=OTHER_ISSUER,
        image_id=OTHER_IMAGE,
        data=solid((40, 30), GREEN, "PNG"),
        filename="others-secret-holiday.png",
    )
    yield catalog
    await catalog.close()


@pytest.fixture
async def keys(catalog: CatalogStore) -> Keys:
    return Keys(
        await catalog.add_api_key(SEED_ISSUER), await catalog.add_api_key(OTHER_ISSUER)
    )
