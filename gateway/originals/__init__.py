"""Originals: the content-addressed stores (a local directory, or S3 in
`gateway.originals.s3`, imported only when configured), ingest (upload or
origin fetch), and the SSRF-guarded fetch from origins."""

from gateway.originals.configured import open_store
from gateway.originals.ingest import Ingestor, add_original, discard, prepare_original
from gateway.originals.local import LocalOriginalStore
from gateway.originals.origin_fetch import (
    FetchError,
    OriginPolicy,
    check_origin,
    fetch_origin,
    guarded_session,
)
from gateway.originals.store import OriginalStore

__all__ = [
    "FetchError",
    "Ingestor",
    "LocalOriginalStore",
    "OriginPolicy",
    "OriginalStore",
    "add_original",
    "check_origin",
    "discard",
    "fetch_origin",
    "guarded_session",
    "open_store",
    "prepare_original",
]
