"""Fixtures for the /v1 catalog API: two issuers with API keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import Settings
from gateway.catalog import Catalog
from gateway.originals import add_original
from gateway.storage import OriginalStore
from tests.conftest import (
    OTHER_IMAGE,
    OTHER_ISSUER,
    OTHER_KEY,
    SEED_ISSUER,
    SEED_KEY,
    render_settings,
)
from tests.gateway.api.support import Keys
from tests.images import GREEN, solid


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return render_settings(tmp_path)


@pytest.fixture
def catalog(settings: Settings) -> Iterator[Catalog]:
    catalog = Catalog(settings.database)
    catalog.add_issuer(issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid=SEED_KEY.kid)
    catalog.add_issuer(
        issuer_id=OTHER_ISSUER, secret=OTHER_KEY.secret, kid=OTHER_KEY.kid
    )
    add_original(
        catalog,
        OriginalStore(settings.originals),
        settings.limits,
        issuer_id=OTHER_ISSUER,
        image_id=OTHER_IMAGE,
        data=solid((40, 30), GREEN, "PNG"),
        filename="others-secret-holiday.png",
    )
    yield catalog
    catalog.close()


@pytest.fixture
def keys(catalog: Catalog) -> Keys:
    return Keys(catalog.add_api_key(SEED_ISSUER), catalog.add_api_key(OTHER_ISSUER))
