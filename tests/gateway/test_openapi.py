"""The OpenAPI document describes exactly the routes the app serves."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from gateway import Settings, create_app
from tests.conftest import Client

DOC = json.loads((Path(__file__).parents[2] / "gateway" / "openapi.json").read_text())


def _served(settings: Settings) -> set[tuple[str, str]]:
    app = create_app(settings)
    return {
        (re.sub(r"\{(\w+)\}", r"{\1}", route.resource.canonical), route.method.lower())
        for route in app.router.routes()
        # HEAD comes with GET; `*` routes answer 404 and 405.
        if route.resource is not None and route.method not in ("HEAD", "*")
    }


DOCUMENTED = {
    (path, method): op.get("x-demo-only", False)
    for path, ops in DOC["paths"].items()
    for method, op in ops.items()
}


def test_documented_operations_are_the_routes(settings: Settings) -> None:
    assert _served(settings) == {op for op, demo in DOCUMENTED.items() if not demo}


def test_the_demo_adds_exactly_its_documented_operations(settings: Settings) -> None:
    demo = replace(settings, server=replace(settings.server, demo=True))
    assert _served(demo) == set(DOCUMENTED)


async def test_document_is_served(client: Client) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert (await response.json())["openapi"].startswith("3.")
