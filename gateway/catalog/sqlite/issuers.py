"""Issuers, their signing keys and API keys, in SQLite."""

from __future__ import annotations

import hmac
import json
import sqlite3
from collections.abc import Sequence

from gateway.catalog.records import ApiKey, CatalogError
from gateway.catalog.rows import (
    api_key_prefix,
    api_key_record,
    key_hash,
    key_name,
    new_api_key,
    new_key,
)
from gateway.catalog.sqlite import schema
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


# Issuers and keys


def add_issuer(
    db: sqlite3.Connection,
    issuer_id: str | None,
    name: str,
    secret: str | None,
    kid: str | None,
    algorithm: str,
    policy: IssuerPolicy,
) -> tuple[Issuer, IssuerKey]:
    issuer_id = schema.parse_uuid(issuer_id)
    key = new_key(kid, secret, algorithm)
    try:
        with schema.transaction(db):
            db.execute(
                "INSERT INTO issuers (id, name, require_exp, max_lifetime, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    issuer_id,
                    name or issuer_id,
                    policy.require_exp,
                    policy.max_lifetime,
                    schema.now(),
                ),
            )
            _insert_key(db, issuer_id, key)
    except sqlite3.IntegrityError as exc:
        raise CatalogError(f"issuer {issuer_id} already exists") from exc
    found = issuer(db, issuer_id)
    assert found is not None  # noqa: S101 - just written
    return found, key


def add_key(
    db: sqlite3.Connection,
    issuer_id: str,
    secret: str | None,
    kid: str | None,
    algorithm: str,
) -> IssuerKey:
    key = new_key(kid, secret, algorithm)
    try:
        with schema.transaction(db):
            if _issuer_row(db, issuer_id) is None:
                raise CatalogError(f"no issuer {issuer_id}")
            _insert_key(db, issuer_id, key)
    except sqlite3.IntegrityError as exc:
        raise CatalogError(f"issuer {issuer_id} has a key {key.kid} already") from exc
    return key


def _insert_key(db: sqlite3.Connection, issuer_id: str, key: IssuerKey) -> None:
    db.execute(
        "INSERT INTO issuer_keys (issuer_id, kid, secret, algorithm, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (issuer_id, key.kid, key.secret, key.algorithm, schema.now()),
    )


def revoke_key(db: sqlite3.Connection, issuer_id: str, kid: str) -> None:
    _revoke(db, "issuer_keys", "kid", issuer_id, kid)


def revoke_api_key(db: sqlite3.Connection, issuer_id: str, prefix: str) -> None:
    _revoke(db, "api_keys", "prefix", issuer_id, api_key_prefix(prefix))


def _revoke(
    db: sqlite3.Connection, table: str, column: str, issuer_id: str, name: str
) -> None:
    """Revoke one active key of an issuer (signing or API), or say there is none."""
    with schema.transaction(db):
        cursor = db.execute(
            f"UPDATE {table} SET revoked_at = ?"  # noqa: S608 - fixed names
            f" WHERE issuer_id = ? AND {column} = ? AND revoked_at IS NULL",
            (schema.now(), issuer_id, name),
        )
        if cursor.rowcount != 1:
            raise CatalogError(
                f"issuer {issuer_id} has no active key {key_name(column, name)}"
            )


def _issuer_row(db: sqlite3.Connection, issuer_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM issuers WHERE id = ?", (issuer_id,)
    ).fetchone()
    return row


def issuer(db: sqlite3.Connection, issuer_id: str) -> Issuer | None:
    row = _issuer_row(db, issuer_id)
    if row is None:
        return None
    keys = db.execute(
        "SELECT kid, secret, algorithm FROM issuer_keys"
        " WHERE issuer_id = ? AND revoked_at IS NULL"
        " ORDER BY created_at DESC, rowid DESC",
        (issuer_id,),
    ).fetchall()
    return _issuer(row, keys)


def issuers(db: sqlite3.Connection) -> list[Issuer]:
    """Every issuer and its active keys: two queries whatever their number, in
    one read transaction so that they agree."""
    keys: dict[str, list[sqlite3.Row]] = {}
    with schema.snapshot(db):
        for key in db.execute(
            "SELECT issuer_id, kid, secret, algorithm FROM issuer_keys"
            " WHERE revoked_at IS NULL ORDER BY created_at DESC, rowid DESC"
        ):
            keys.setdefault(key["issuer_id"], []).append(key)
        rows = db.execute("SELECT * FROM issuers ORDER BY created_at, id").fetchall()
    return [_issuer(row, keys.get(row["id"], [])) for row in rows]


def _issuer(row: sqlite3.Row, keys: Sequence[sqlite3.Row]) -> Issuer:
    return Issuer(
        id=row["id"],
        name=row["name"],
        keys=tuple(
            IssuerKey.stored(kid=k["kid"], secret=k["secret"], algorithm=k["algorithm"])
            for k in keys
        ),
        policy=IssuerPolicy(
            require_exp=bool(row["require_exp"]), max_lifetime=row["max_lifetime"]
        ),
    )


# API keys


def add_api_key(
    db: sqlite3.Connection, issuer_id: str, roles: frozenset[str] = frozenset()
) -> str:
    prefix, key = new_api_key()
    with schema.transaction(db):
        if _issuer_row(db, issuer_id) is None:
            raise CatalogError(f"no issuer {issuer_id}")
        db.execute(
            "INSERT INTO api_keys (prefix, issuer_id, hash, created_at, roles)"
            " VALUES (?, ?, ?, ?, ?)",
            (prefix, issuer_id, key_hash(key), schema.now(), json.dumps(sorted(roles))),
        )
    return key


def api_key(db: sqlite3.Connection, key: str) -> ApiKey | None:
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "sk":
        return None
    row = db.execute(
        "SELECT prefix, issuer_id, hash, created_at, revoked_at, roles FROM api_keys"
        " WHERE prefix = ? AND revoked_at IS NULL",
        (parts[1],),
    ).fetchone()
    # Hash even when no row matched, so timing tells nothing about prefixes.
    expected = row["hash"] if row is not None else "0" * 64
    if not hmac.compare_digest(key_hash(key), expected) or row is None:
        return None
    return api_key_record(row)


def api_keys(db: sqlite3.Connection, issuer_id: str) -> list[ApiKey]:
    rows = db.execute(
        "SELECT prefix, issuer_id, created_at, revoked_at, roles FROM api_keys"
        " WHERE issuer_id = ? ORDER BY created_at",
        (issuer_id,),
    ).fetchall()
    return [api_key_record(r) for r in rows]
