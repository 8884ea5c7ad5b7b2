"""The catalog in PostgreSQL: one database shared by many gateway replicas."""

from gateway.catalog.postgres.catalog import (
    PoolOutagesInOneLine,
    PostgresCatalog,
    redacted,
    upgrade,
)
from gateway.catalog.postgres.schema import MIGRATIONS

__all__ = [
    "MIGRATIONS",
    "PoolOutagesInOneLine",
    "PostgresCatalog",
    "redacted",
    "upgrade",
]
