"""A change signal shared by every process on one catalog file.

SQLite tells a connection that another one committed (`PRAGMA data_version`),
but only when asked, and asking is a query. Beside the catalog lies an
eight-byte file, mapped into memory by every process that opens it: each
write stamps it with a fresh random value, and reading it is a memory
load. So a write acknowledged by one worker (or the CLI) is seen by every
other on its very next request, not after a poll interval.
"""

from __future__ import annotations

import mmap
import os
import random
import struct
from pathlib import Path
from typing import Final

__all__ = ["ChangeSignal"]

_SIZE: Final = 8
_VALUE: Final = struct.Struct("<Q")


class ChangeSignal:
    def __init__(self, path: Path) -> None:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(descriptor).st_size < _SIZE:
                os.ftruncate(descriptor, _SIZE)
            self._map = mmap.mmap(descriptor, _SIZE)
        finally:
            os.close(descriptor)
        self._seen = self._read()

    def _read(self) -> int:
        value: int = _VALUE.unpack_from(self._map, 0)[0]
        return value

    def stamp(self) -> None:
        """Say that this process changed the catalog (after its commit)."""
        # A fresh value, not an increment: two processes stamping at once
        # still leave a value everyone else has not seen.
        value = random.getrandbits(64)
        _VALUE.pack_into(self._map, 0, value)
        self._seen = value

    def moved(self) -> bool:
        """Whether another process stamped since this one last looked."""
        value = self._read()
        if value == self._seen:
            return False
        self._seen = value
        return True

    def close(self) -> None:
        self._map.close()
