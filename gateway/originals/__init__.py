"""Originals: the content-addressed file store, ingest (upload or origin fetch),
and the SSRF-guarded fetch from origins."""

from gateway.originals.ingest import Ingestor, add_original, discard, prepare_original
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
    "OriginPolicy",
    "OriginalStore",
    "add_original",
    "check_origin",
    "discard",
    "fetch_origin",
    "guarded_session",
    "prepare_original",
]
