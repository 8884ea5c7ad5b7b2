"""The `image-gateway` command: serve, and manage issuers, images and tokens."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from gateway.catalog import CatalogError
from gateway.cli import commands
from gateway.cli.commands import CommandError
from gateway.cli.serve import serve
from gateway.config import ConfigError, Settings
from signing import ALLOWED_ALGORITHMS
from transforms.cloudinary import DELIVERY_TYPES, FORMATS

__all__ = ["main"]

_EXIT_USAGE: Final = 2


def main(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ
) -> int:
    args = _parser().parse_args(argv)
    run: Callable[[Settings, argparse.Namespace], int | None] = args.run
    try:
        return run(Settings.from_env(environ), args) or 0
    except (ConfigError, CatalogError, CommandError, ValueError) as exc:
        print(f"image-gateway: {exc}", file=sys.stderr)
        return _EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="image-gateway",
        description="Signed-URL image transformation gateway. Settings come from "
        "GATEWAY_* variables and CLOUDINARY_URL (see the README).",
    )
    verbs = parser.add_subparsers(dest="command", required=True)

    server = verbs.add_parser("serve", help="run the HTTP server")
    server.add_argument("--host", help="bind address (GATEWAY_HOST)")
    server.add_argument(
        "--port", type=int, help="TCP port (GATEWAY_PORT); 0 picks a free one"
    )
    server.add_argument(
        "--workers", type=int, help="processes on the port (GATEWAY_WORKERS)"
    )
    server.add_argument(
        "--demo", action="store_true", help="seed demo images and serve /demo"
    )
    server.set_defaults(run=serve)

    db = verbs.add_parser("db", help="the catalog's database").add_subparsers(
        dest="action", required=True
    )
    db.add_parser(
        "upgrade",
        help="create or migrate the catalog's schema (each start does it too)",
    ).set_defaults(run=commands.db_upgrade)

    moving = verbs.add_parser(
        "migrate",
        help="copy this SQLite catalog into PostgreSQL (idempotent, resumable, verified)",
    )
    moving.add_argument(
        "--catalog-to", required=True, metavar="postgresql://…", help="the target"
    )
    moving.set_defaults(run=commands.migrate)

    issuer = verbs.add_parser("issuer", help="manage issuers").add_subparsers(
        dest="action", required=True
    )
    add = issuer.add_parser("add", help="register an issuer with a first signing key")
    add.add_argument("--id", help="issuer UUID (random when omitted)")
    add.add_argument("--name")
    _key_options(add)
    add.add_argument("--require-exp", action="store_true", help="tokens must carry exp")
    add.add_argument("--max-lifetime", type=int, help="longest exp - iat, in seconds")
    add.set_defaults(run=commands.issuer_add)
    issuer.add_parser("list", help="list issuers").set_defaults(
        run=commands.issuer_list
    )
    signing_key = issuer.add_parser(
        "signing-key", help="rotate token signing keys"
    ).add_subparsers(dest="key_action", required=True)
    key_add = signing_key.add_parser("add", help="add a key (tokens name it as kid)")
    key_add.add_argument("--issuer", required=True)
    _key_options(key_add)
    key_add.set_defaults(run=commands.signing_key_add)
    key_revoke = signing_key.add_parser("revoke", help="revoke a key at once")
    key_revoke.add_argument("--issuer", required=True)
    key_revoke.add_argument("--kid", required=True)
    key_revoke.set_defaults(run=commands.signing_key_revoke)

    api_key = issuer.add_parser(
        "key", help="API keys for the /v1 catalog API (sk_…; shown once)"
    ).add_subparsers(dest="key_action", required=True)
    for name, run, help_text in (
        ("create", commands.api_key_create, "make another API key"),
        ("list", commands.api_key_list, "list keys (prefixes only)"),
        ("revoke", commands.api_key_revoke, "revoke a key at once"),
    ):
        command = api_key.add_parser(name, help=help_text)
        command.add_argument("--issuer", required=True)
        if name == "revoke":
            command.add_argument("--prefix", required=True, help="sk_xxxxxxxxxxxx")
        command.set_defaults(run=run)

    image = verbs.add_parser("image", help="manage images").add_subparsers(
        dest="action", required=True
    )
    image_add = image.add_parser("add", help="register an image")
    image_add.add_argument("--issuer", required=True)
    image_add.add_argument("--id", help="image UUID (random when omitted)")
    image_add.add_argument("--file", help="a local original (JPEG, PNG, WebP, GIF)")
    image_add.add_argument("--public-id", help="Cloudinary public id")
    image_add.add_argument("--version", type=int)
    image_add.add_argument("--format", choices=sorted(FORMATS))
    image_add.add_argument("--delivery-type", choices=sorted(DELIVERY_TYPES))
    image_add.set_defaults(run=commands.image_add)
    image_list = image.add_parser("list", help="list an issuer's images")
    image_list.add_argument("--issuer", required=True)
    image_list.set_defaults(run=commands.image_list)
    image_rm = image.add_parser("rm", help="remove an image")
    image_rm.add_argument("--id", required=True)
    image_rm.add_argument(
        "--preserve-on-disk", action="store_true", help="keep the original file"
    )
    image_rm.set_defaults(run=commands.image_rm)

    token = verbs.add_parser("token", help="mint tokens").add_subparsers(
        dest="action", required=True
    )
    token_mint = token.add_parser("mint", help="mint a token and its delivery URL")
    token_mint.add_argument("--issuer", required=True)
    token_mint.add_argument("--image", required=True)
    token_mint.add_argument("--transformations", default="[]", help="JSON list")
    token_mint.add_argument("--ttl", type=int, help="seconds until exp")
    token_mint.add_argument("--kid", help="signing key (newest when omitted)")
    token_mint.add_argument(
        "--bind",
        action="store_true",
        help="set sub: the token works for this image only",
    )
    token_mint.set_defaults(run=commands.token_mint)
    return parser


def _key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secret", help="shared secret (random when omitted)")
    parser.add_argument("--kid", help="key id (random when omitted)")
    parser.add_argument(
        "--algorithm", default="HS256", choices=sorted(ALLOWED_ALGORITHMS)
    )
