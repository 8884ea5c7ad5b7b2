"""Running the gateway as a server: what the HTTP framework leaves to its host."""

from gateway.ops.connections import ConnectionGuard

__all__ = ["ConnectionGuard"]
