"""scripts/replicas.py, smaller: two real gateway processes on one PostgreSQL
catalog and one S3 store agree on every image and see each other's deletes
and revocations within the documented bound."""

from __future__ import annotations

from pathlib import Path

from scripts.replicas import BOUND, Shared, run
from tests.s3 import S3Server


async def test_two_replicas_agree_and_see_each_others_writes_within_the_bound(
    tmp_path: Path, postgres_url: str, s3_server: S3Server, s3_bucket: str
) -> None:
    """`run` raises on any broken promise: a missing, doubled or reordered image,
    a late 404 or 401; the bounds are asserted here as well for the record."""
    shared = Shared(
        database_url=postgres_url, s3_endpoint=s3_server.endpoint, bucket=s3_bucket
    )
    printed: list[str] = []
    timings = await run(shared, tmp_path, images=100, deletes=3, out=printed.append)
    assert len(timings.delete_seen) == 3
    assert max(timings.delete_seen) <= BOUND
    assert timings.revoke_seen <= BOUND
    assert set(timings.listing) == {"A", "B"}
    assert any("the same order through both" in line for line in printed)
