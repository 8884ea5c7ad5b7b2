"""The catalog in PostgreSQL: one database shared by many gateway replicas."""

from gateway.catalog.postgres.catalog import PostgresCatalog, redacted, upgrade
from gateway.catalog.postgres.schema import MIGRATIONS

__all__ = ["MIGRATIONS", "PostgresCatalog", "redacted", "upgrade"]
