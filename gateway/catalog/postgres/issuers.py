"""Issuers, their signing keys and API keys, in PostgreSQL (the SQLite module's twin)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence

import asyncpg

from gateway.catalog.postgres.schema import Conn
from gateway.catalog.records import ApiKey, CatalogError
from gateway.catalog.rows import (
    api_key_prefix,
    api_key_record,
    key_hash,
    key_name,
    new_api_key,
    new_key,
    now,
    parse_uuid,
)
from signing import Issuer, IssuerKey, IssuerPolicy

__all__ = [
    "add_api_key",
    "add_issuer",
    "add_key",
    "api_key",
    "api_keys",
    "issuer",
    "issuers",
    "revoke_api_key",
    "revoke_key",
]


async def add_issuer(
    db: Conn,
    issuer_id: str | None,
    name: str,
    secret: str | None,
    kid: str | None,
    algorithm: str,
    policy: IssuerPolicy,
) -> tuple[Issuer, IssuerKey]:
    issuer_id = parse_uuid(issuer_id)
    key = new_key(kid, secret, algorithm)
    try:
        await db.execute(
            "INSERT INTO issuers (id, name, require_exp, max_lifetime, created_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            issuer_id,
            name or issuer_id,
            policy.require_exp,
            policy.max_lifetime,
            now(),
        )
        await _insert_key(db, issuer_id, key)
    except asyncpg.UniqueViolationError as exc:
        raise CatalogError(f"issuer {issuer_id} already exists") from exc
    found = await issuer(db, issuer_id)
    assert found is not None  # noqa: S101 - just written
    return found, key


async def add_key(
    db: Conn, issuer_id: str, secret: str | None, kid: str | None, algorithm: str
) -> IssuerKey:
    key = new_key(kid, secret, algorithm)
    if await _issuer_row(db, issuer_id) is None:
        raise CatalogError(f"no issuer {issuer_id}")
    try:
        await _insert_key(db, issuer_id, key)
    except asyncpg.UniqueViolationError as exc:
        raise CatalogError(f"issuer {issuer_id} has a key {key.kid} already") from exc
    return key


async def _insert_key(db: Conn, issuer_id: str, key: IssuerKey) -> None:
    await db.execute(
        "INSERT INTO issuer_keys (issuer_id, kid, secret, algorithm, created_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        issuer_id,
        key.kid,
        key.secret,
        key.algorithm,
        now(),
    )


async def revoke_key(db: Conn, issuer_id: str, kid: str) -> None:
    await _revoke(db, "issuer_keys", "kid", issuer_id, kid)


async def revoke_api_key(db: Conn, issuer_id: str, prefix: str) -> None:
    await _revoke(db, "api_keys", "prefix", issuer_id, api_key_prefix(prefix))


async def _revoke(db: Conn, table: str, column: str, issuer_id: str, name: str) -> None:
    status = await db.execute(
        f"UPDATE {table} SET revoked_at = $1"  # noqa: S608 - fixed names
        f" WHERE issuer_id = $2 AND {column} = $3 AND revoked_at IS NULL",
        now(),
        issuer_id,
        name,
    )
    if status != "UPDATE 1":
        raise CatalogError(
            f"issuer {issuer_id} has no active key {key_name(column, name)}"
        )


async def _issuer_row(db: Conn, issuer_id: str) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM issuers WHERE id = $1", issuer_id)


async def issuer(db: Conn, issuer_id: str) -> Issuer | None:
    row = await _issuer_row(db, issuer_id)
    if row is None:
        return None
    keys = await db.fetch(
        "SELECT kid, secret, algorithm FROM issuer_keys"
        " WHERE issuer_id = $1 AND revoked_at IS NULL"
        " ORDER BY created_at DESC, seq DESC",
        issuer_id,
    )
    return _issuer(row, keys)


async def issuers(db: Conn) -> list[Issuer]:
    """Every issuer and its active keys (the caller gives one snapshot)."""
    keys: dict[str, list[asyncpg.Record]] = {}
    for key in await db.fetch(
        "SELECT issuer_id, kid, secret, algorithm FROM issuer_keys"
        " WHERE revoked_at IS NULL ORDER BY created_at DESC, seq DESC"
    ):
        keys.setdefault(key["issuer_id"], []).append(key)
    rows = await db.fetch("SELECT * FROM issuers ORDER BY created_at, id")
    return [_issuer(row, keys.get(row["id"], [])) for row in rows]


def _issuer(row: asyncpg.Record, keys: Sequence[asyncpg.Record]) -> Issuer:
    return Issuer(
        id=row["id"],
        name=row["name"],
        keys=tuple(
            IssuerKey.stored(kid=k["kid"], secret=k["secret"], algorithm=k["algorithm"])
            for k in keys
        ),
        policy=IssuerPolicy(
            require_exp=row["require_exp"], max_lifetime=row["max_lifetime"]
        ),
    )


async def add_api_key(
    db: Conn, issuer_id: str, roles: frozenset[str] = frozenset()
) -> str:
    prefix, key = new_api_key()
    if await _issuer_row(db, issuer_id) is None:
        raise CatalogError(f"no issuer {issuer_id}")
    await db.execute(
        "INSERT INTO api_keys (prefix, issuer_id, hash, created_at, roles)"
        " VALUES ($1, $2, $3, $4, $5)",
        prefix,
        issuer_id,
        key_hash(key),
        now(),
        json.dumps(sorted(roles)),
    )
    return key


async def api_key(db: Conn, key: str) -> ApiKey | None:
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "sk":
        return None
    row = await db.fetchrow(
        "SELECT prefix, issuer_id, hash, created_at, revoked_at, roles FROM api_keys"
        " WHERE prefix = $1 AND revoked_at IS NULL",
        parts[1],
    )
    # Hash even when no row matched, so timing tells nothing about prefixes.
    expected = row["hash"] if row is not None else "0" * 64
    if not hmac.compare_digest(key_hash(key), expected) or row is None:
        return None
    return api_key_record(row)


async def api_keys(db: Conn, issuer_id: str) -> list[ApiKey]:
    rows = await db.fetch(
        "SELECT prefix, issuer_id, created_at, revoked_at, roles FROM api_keys"
        " WHERE issuer_id = $1 ORDER BY created_at",
        issuer_id,
    )
    return [api_key_record(r) for r in rows]
