"""`image-gateway migrate --originals-to s3://…`: the local originals copied into
S3 through the real command, on its own or with `--catalog-to`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.catalog import PostgresCatalog, SqliteCatalog
from gateway.originals import LocalOriginalStore, add_original
from tests.images import solid
from tests.s3 import ACCESS_KEY, SECRET_KEY, S3Server
from transforms import Limits

ISSUER = "a0000000-0000-4000-8000-000000000001"


def migrate(
    data_dir: Path, *argv: str, endpoint: str | None = None, **environ: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(data_dir),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        **environ,
    }
    if endpoint is not None:
        env["GATEWAY_S3_ENDPOINT"] = endpoint
    return subprocess.run(
        [sys.executable, "-m", "gateway", "migrate", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def report(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    doc = json.loads(result.stdout)["originals"]
    assert isinstance(doc, dict)
    return doc


async def _local(data_dir: Path, count: int) -> list[str]:
    """`count` distinct originals in the local directory; their digests."""
    local = LocalOriginalStore(data_dir / "originals")
    return [await local.put(solid((4 + i, 4), (i, 9, 9))) for i in range(count)]


async def test_a_first_run_copies_and_a_second_copies_nothing(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    await _local(tmp_path, 3)
    target = f"s3://{s3_bucket}/originals"
    first = migrate(tmp_path, "--originals-to", target, endpoint=s3_server.endpoint)
    assert first.returncode == 0, first.stderr
    assert report(first) == {
        "from": str(tmp_path / "originals"),
        "to": f"{target}/",
        "copied": 3,
        "alreadyThere": 0,
        "verified": 3,
        "damaged": [],
    }
    again = migrate(tmp_path, "--originals-to", target, endpoint=s3_server.endpoint)
    assert again.returncode == 0, again.stderr
    assert (report(again)["copied"], report(again)["alreadyThere"]) == (0, 3)
    assert "catalog" not in json.loads(again.stdout)


async def test_a_damaged_local_original_is_reported_and_exits_2(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    _, bad = await _local(tmp_path, 2)
    damaged = tmp_path / "originals" / bad[:2] / bad
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\x00")
    result = migrate(
        tmp_path, "--originals-to", f"s3://{s3_bucket}", endpoint=s3_server.endpoint
    )
    assert result.returncode == 2
    assert (report(result)["copied"], report(result)["damaged"]) == (1, [bad])
    assert result.stderr.startswith("image-gateway: 1 local original(s) do not hash")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("bucket", "endpoint"),
    [
        pytest.param("no-such-bucket", None, id="no-bucket"),
        pytest.param(None, "http://127.0.0.1:9", id="nothing-listening"),
    ],
)
async def test_a_store_that_cannot_be_reached_exits_2_with_one_line(
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    bucket: str | None,
    endpoint: str | None,
) -> None:
    await _local(tmp_path, 1)
    result = migrate(
        tmp_path,
        "--originals-to",
        f"s3://{bucket or s3_bucket}/originals",
        endpoint=endpoint or s3_server.endpoint,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("image-gateway: GATEWAY_ORIGINALS_URL s3://")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param([], "give --catalog-to, --originals-to, or both", id="neither"),
        pytest.param(
            ["--originals-to", "https://bucket/x"],
            "--originals-to must look like s3://bucket/prefix",
            id="not-s3",
        ),
    ],
)
def test_bad_targets_exit_2(tmp_path: Path, argv: list[str], message: str) -> None:
    result = migrate(tmp_path, *argv)
    assert result.returncode == 2
    assert result.stderr == f"image-gateway: {message}\n"


async def test_both_halves_in_one_command(
    tmp_path: Path, postgres_url: str, s3_server: S3Server, s3_bucket: str
) -> None:
    """The catalog moves to PostgreSQL, its images' originals to S3."""
    sqlite = await SqliteCatalog.open(tmp_path / "catalog.sqlite3")
    originals = LocalOriginalStore(tmp_path / "originals")
    try:
        await sqlite.add_issuer(issuer_id=ISSUER, name="a", kid="a-1", secret="a" * 40)
        for i in range(2):
            data = solid((5, 3 + i), (i, 9, 9))
            await add_original(sqlite, originals, Limits(), issuer_id=ISSUER, data=data)
    finally:
        await sqlite.close()
    argv = ("--catalog-to", postgres_url, "--originals-to", f"s3://{s3_bucket}/o")
    result = migrate(tmp_path, *argv, endpoint=s3_server.endpoint)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["catalog"]["verified"] is True
    assert (doc["originals"]["copied"], doc["originals"]["damaged"]) == (2, [])
    pg = await PostgresCatalog.open(postgres_url)
    try:
        assert len(await pg.images(ISSUER)) == 2
    finally:
        await pg.close()


async def test_the_catalog_alone_copies_no_originals_though_a_store_is_configured(
    tmp_path: Path, postgres_url: str, s3_server: S3Server, s3_bucket: str
) -> None:
    await _local(tmp_path, 1)
    await (await SqliteCatalog.open(tmp_path / "catalog.sqlite3")).close()
    result = migrate(
        tmp_path,
        "--catalog-to",
        postgres_url,
        endpoint=s3_server.endpoint,
        GATEWAY_ORIGINALS_URL=f"s3://{s3_bucket}",
    )
    assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout)) == ["catalog"]
