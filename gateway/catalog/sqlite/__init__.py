"""The catalog in one SQLite file: the embedded default."""

from gateway.catalog.sqlite.catalog import SqliteCatalog
from gateway.catalog.sqlite.schema import MIGRATIONS

__all__ = ["MIGRATIONS", "SqliteCatalog"]
