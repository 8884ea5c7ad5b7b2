"""Contract tests: schemathesis against the OpenAPI document a served gateway publishes.

The gateway runs as an operator runs it (`python -m gateway serve`, local
rendering, the access log on). Every schemathesis check runs, not only "no
5xx": status codes, content types, headers and bodies as documented, invalid
input refused, valid input accepted, authentication not ignored, methods not
documented refused. An issuer's API key and transformation tokens made here
take the generated requests past authentication to the real handlers.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from gateway import Settings
from gateway.catalog import SqliteCatalog
from scripts import seed004
from signing import mint
from tests.conftest import API_SECRET, SEED_CLOUD, SEED_IMAGE, SEED_ISSUER, SEED_KEY
from tests.images import RED, solid

# Bounded so that the whole contract run stays within seconds per operation.
EXAMPLES: Final = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True, slots=True)
class Gateway:
    url: str
    api_key: str
    image_id: str

    def token(
        self, transformations: object = None, *, subject: str | None = None
    ) -> str:
        """A fresh token of the seed issuer: a small fit unless told otherwise."""
        if transformations is None:
            transformations = [{"crop": "fit", "width": 16}]
        return mint(
            SEED_KEY,
            issuer_id=SEED_ISSUER,
            transformations=transformations,
            subject=subject,
        )


async def _seed(settings: Settings) -> str:
    """The seed issuer, its signing key and an API key; seed 004's Cloudinary images."""
    catalog = await SqliteCatalog.open(settings.database)
    try:
        await catalog.add_issuer(
            issuer_id=SEED_ISSUER, name="seed", secret=SEED_KEY.secret, kid=SEED_KEY.kid
        )
        await seed004.add_assets(catalog)
        return await catalog.add_api_key(SEED_ISSUER)
    finally:
        await catalog.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _served(data_dir: Path, **environ: str) -> Iterator[str]:
    """`python -m gateway serve` on a free port, its URL once it answers."""
    port = _free_port()
    env = {**os.environ, "GATEWAY_DATA_DIR": str(data_dir)}
    env.pop("CLOUDINARY_URL", None)
    env.update(GATEWAY_PORT=str(port), GATEWAY_WORKERS="1", **environ)
    with (data_dir / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/livez", timeout=1):  # noqa: S310
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the gateway did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A fresh install: local rendering, an image uploaded through the API."""
    data_dir = tmp_path_factory.mktemp("contract")
    api_key = asyncio.run(_seed(Settings(data_dir=data_dir)))
    with _served(data_dir) as url:
        uploaded = requests.post(
            f"{url}/v1/images",
            headers={"Authorization": f"Bearer {api_key}"},
            files={"image": ("red.png", solid((32, 32), RED), "image/png")},
            timeout=10,
        )
        assert uploaded.status_code == 201, uploaded.text
        yield Gateway(url=url, api_key=api_key, image_id=uploaded.json()["data"]["id"])


@pytest.fixture(scope="module")
def redirecting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """With a Cloudinary account: 302s to signed URLs for seed 004's images."""
    data_dir = tmp_path_factory.mktemp("contract-redirect")
    api_key = asyncio.run(_seed(Settings(data_dir=data_dir)))
    account = f"cloudinary://1234:{API_SECRET}@{SEED_CLOUD}"
    with _served(data_dir, CLOUDINARY_URL=account) as url:
        yield Gateway(url=url, api_key=api_key, image_id=SEED_IMAGE)


OPENAPI: Final = Path(__file__).parents[2] / "gateway" / "openapi.json"
# An upload's file must be an image of an allowed type, decided from its
# bytes: generated bytes are refused (422) however well they fit the schema.
CONFIG: Final = SchemathesisConfig.from_dict(
    {
        # Query parameters the gateway does not know are ignored, as HTTP
        # caches and cache-busting clients expect: none are generated.
        "generation": {"allow-extra-parameters": False},
        "operations": [
            # A IIIF region, size or rotation is valid only against the
            # image's own dimensions (a region past its edge, a size over its
            # maximum without `^` are 400 by the specification) and a few
            # valid forms are not offered (501): no schema can say which.
            {
                "include-path-regex": "^/iiif/3/.+/.+/.+/.+",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2XX", "3XX", 400, 401, 403, 404, 501]
                    }
                },
            },
            {
                "include-path": "/v1/images",
                "include-method": ["POST", "PUT"],
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2XX", 401, 403, 404, 409, 422, 429]
                    }
                },
            },
        ],
    }
)
# The playground's operations exist only under `serve --demo` (marked
# `x-demo-only`); `tests/gateway/http/test_demo*.py` holds them to the document.
schema = schemathesis.openapi.from_path(OPENAPI, config=CONFIG).exclude(
    path_regex="^/demo"
)


def test_the_document_checked_is_the_one_served(gateway: Gateway) -> None:
    served = requests.get(f"{gateway.url}/openapi.json", timeout=10)
    assert served.content == OPENAPI.read_bytes()


@schema.parametrize()
@EXAMPLES
def test_every_operation_keeps_its_contract(case: Case[Any], gateway: Gateway) -> None:
    meta = case.meta
    negative = meta is not None and meta.generation.mode.is_negative
    headers = {}
    if case.path.startswith(("/v1/", "/v3/", "/image/")) and not (
        meta is not None and meta.is_negative_at(ParameterLocation.HEADER)
    ):
        # The seed issuer's key; a case whose headers are the invalid part
        # keeps them (no key, or a generated one), and must be refused.
        headers["Authorization"] = f"Bearer {gateway.api_key}"
    if case.path == "/images/{image_id}" and not negative:
        # A valid token, so that delivery gets past verification; negative
        # cases keep the token generated for them.
        case.query = {**(case.query or {}), "token": gateway.token()}
    if case.path == "/v1/images" and case.method == "GET" and not negative:
        # Cursors are opaque: only those the API made (links.next, links.prev)
        # are valid, and one of the two at most; no schema can say so.
        for cursor in ("page[after]", "page[before]"):
            (case.query or {}).pop(cursor, None)
    case.call_and_validate(base_url=gateway.url, headers=headers, timeout=10)


def _deliver(gateway: Gateway, transformations: object) -> Any:
    operation: Any = schema["/images/{image_id}"]["GET"]
    case = operation.Case(
        path_parameters={"image_id": gateway.image_id},
        query={"token": gateway.token(transformations, subject=gateway.image_id)},
    )
    return case.call_and_validate(
        base_url=gateway.url, timeout=10, allow_redirects=False
    )


def test_a_delivery_renders_as_documented(gateway: Gateway) -> None:
    response = _deliver(gateway, [{"crop": "fit", "width": 16}])
    assert response.status_code == 200
    assert response.headers["content-type"][0].startswith("image/")


def test_a_redirect_is_as_documented(redirecting: Gateway) -> None:
    response = _deliver(redirecting, seed004.tiling())
    assert response.status_code == 302
    assert response.headers["location"][0].startswith("https://res.cloudinary.com/")
