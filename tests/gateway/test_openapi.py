"""The OpenAPI document describes exactly the routes the app serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gateway import Settings, create_app
from tests.conftest import Client

DOC = json.loads((Path(__file__).parents[2] / "gateway" / "openapi.json").read_text())


def test_documented_operations_are_the_routes(settings: Settings) -> None:
    app = create_app(settings)
    served = {
        (re.sub(r"\{(\w+)\}", r"{\1}", route.resource.canonical), route.method.lower())
        for route in app.router.routes()
        # HEAD comes with GET; `*` routes answer 404 and 405.
        if route.resource is not None and route.method not in ("HEAD", "*")
    }
    documented = {
        (path, method) for path, ops in DOC["paths"].items() for method in ops
    }
    assert served == documented


async def test_document_is_served(client: Client) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert (await response.json())["openapi"].startswith("3.")
