"""The IIIF consortium's own validator (`iiif-validate.py`) judges `/iiif/3` at level 2.

The gateway serves on 127.0.0.1; the validator's test image (a 10x10 grid
of 100-px squares) is drawn here from the colours listed in the validator's
own source, and registered under the identifier its documentation uses.
Nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import sys
from pathlib import Path
from typing import Final, NoReturn

import pytest
from aiohttp.test_utils import TestServer, unused_port
from PIL import Image
from pytest_aiohttp import AiohttpServer

from gateway import Settings, create_app
from gateway.catalog import SqliteCatalog
from gateway.originals.ingest import add_original
from gateway.originals.local import LocalOriginalStore
from tests.conftest import SEED_ISSUER, SEED_KEY, render_settings

IDENTIFIER: Final = "67352ccc-d1b0-11e1-89ae-279075081939"
SCRIPT: Final = Path(sys.executable).parent / "iiif-validate.py"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must run the IIIF validator)")
    pytest.skip(reason)


def validator_image() -> bytes:
    """The validator's 1000x1000 grid: the square at column x, row y is colorInfo[x][y]."""
    try:
        from iiif_validator.validator import ValidationInfo
    except ImportError:
        _unavailable("iiif-validator is not installed (pip install -e '.[dev]')")
    colors: list[list[tuple[int, int, int]]] = ValidationInfo().colorInfo
    image = Image.new("RGB", (1000, 1000))
    for x, column in enumerate(colors):
        for y, color in enumerate(column):
            image.paste(color, (x * 100, y * 100, x * 100 + 100, y * 100 + 100))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def port() -> int:
    return unused_port()


@pytest.fixture
def settings(tmp_path: Path, port: int) -> Settings:
    base = render_settings(tmp_path)
    return dataclasses.replace(
        base,
        server=dataclasses.replace(base.server, public_url=f"http://127.0.0.1:{port}"),
    )


@pytest.fixture
async def server(
    aiohttp_server: AiohttpServer, settings: Settings, port: int
) -> TestServer:
    catalog = await SqliteCatalog.open(settings.database)
    try:
        await catalog.add_issuer(
            issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid=SEED_KEY.kid
        )
        await add_original(
            catalog,
            LocalOriginalStore(settings.originals),
            settings.limits,
            issuer_id=SEED_ISSUER,
            image_id=IDENTIFIER,
            data=validator_image(),
        )
        await catalog.update_image(IDENTIFIER, {"is_public": True})
    finally:
        await catalog.close()
    return await aiohttp_server(create_app(settings), host="127.0.0.1", port=port)


async def test_the_iiif_validator_passes_every_level_2_test(
    server: TestServer, port: int
) -> None:
    if not SCRIPT.exists():
        _unavailable(f"{SCRIPT} is missing (pip install -e '.[dev]')")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--version=3.0",
        "--level=2",
        f"--server=127.0.0.1:{port}",
        "--prefix=iiif/3",
        f"--identifier={IDENTIFIER}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    report = out.decode()
    assert process.returncode == 0, report
    # Every test of level 0 to 2 ran and passed; none was left out.
    assert "FAIL" not in report, report
    summary = report.strip().splitlines()[-1]
    assert summary.startswith("Done ("), report
    assert summary.endswith(", 0 failures)"), report
    assert int(summary.removeprefix("Done (").split()[0]) == _level_2_tests(), report


def _level_2_tests() -> int:
    """How many tests the validator has for IIIF 3.0 up to level 2, by its own list."""
    from iiif_validator.validator import TestSuite, ValidationInfo

    tests = TestSuite(ValidationInfo()).list_tests("3.0")
    return sum(1 for test in tests.values() if test["level"] <= 2)
