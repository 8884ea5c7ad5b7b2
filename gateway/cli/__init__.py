"""The `image-gateway` command: serve, and manage issuers, images and tokens."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Final, NoReturn

from gateway.catalog import CatalogError
from gateway.cli import commands
from gateway.cli.commands import CommandError
from gateway.cli.serve import serve
from gateway.config import ConfigError, Settings, unknown_variables
from gateway.env import as_s3_url
from gateway.errors import OriginalsUnavailableError
from signing import ALLOWED_ALGORITHMS
from transforms import CropMode, Effect, Gravity, Limits
from transforms.cloudinary import DELIVERY_TYPES, FORMATS

__all__ = ["main"]

_EXIT_USAGE: Final = 2
_ISSUER_HELP: Final = "the issuer's UUID"
_DEFAULTS: Final = Limits()
_TRANSFORMATION_KEYS: Final = f"""\
Each step of --transformations is a JSON object of these keys:
  crop            {", ".join(CropMode)}
  width, height   1 to {_DEFAULTS.max_size} (GATEWAY_MAX_SIZE)
  gravity         {", ".join(Gravity)}
                  (an overlay's placement, or the region of fill, lfill, pad,
                  lpad, crop, thumb)
  x, y            -{_DEFAULTS.max_offset} to {_DEFAULTS.max_offset}: an overlay's offset, or crop's region
  overlay         another image's UUID (same issuer); the step sizes it
  opacity         0 to 100
  angle           -360 to 360 (clockwise), or hflip (mirror left to right)
  effect          {", ".join(Effect)}
  background      #rrggbb, #rrggbbaa, white, black, transparent (pad, lpad)

Three 800-wide tiles side by side (why 800, then 1200: docs/geometry.md):
  --transformations '[{{"crop": "fit", "width": 800}},
    {{"overlay": "<image id>", "crop": "fit", "width": 800, "x": 800}},
    {{"overlay": "<image id>", "crop": "fit", "width": 800, "x": 1200}}]'
"""


def main(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ
) -> int:
    args = _parser().parse_args(argv)
    run: Callable[[Settings, argparse.Namespace], int | None] = args.run
    try:
        if (target := getattr(args, "originals_to", None)) is not None:
            as_s3_url("--originals-to", target)  # its faults named as typed
            # The target store is read as the replicas will read it (endpoint,
            # credentials, region); the originals copied are the local directory's.
            environ = {**environ, "GATEWAY_ORIGINALS_URL": target}
        settings = Settings.from_env(environ)
        for warning in unknown_variables(environ):
            print(f"image-gateway: {warning}", file=sys.stderr)
        return run(settings, args) or 0
    except (
        ConfigError,
        CatalogError,
        CommandError,
        ValueError,
        OriginalsUnavailableError,
    ) as exc:
        print(f"image-gateway: {exc}", file=sys.stderr)
        return _EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    """A usage mistake in one line, as every other start-up mistake, naming
    the help that shows the usage argparse would print (its subcommands'
    parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(_EXIT_USAGE, f"image-gateway: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="image-gateway",
        description="Signed-URL image transformation gateway. Settings come from "
        "GATEWAY_* variables and CLOUDINARY_URL (see the README).",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {metadata.version('image-gateway')}",
        help="print the version and exit",
    )
    verbs = parser.add_subparsers(required=True)

    server = verbs.add_parser("serve", help="run the HTTP server")
    server.add_argument("--host", help="bind address (GATEWAY_HOST)")
    server.add_argument(
        "--port", type=_port, help="TCP port (GATEWAY_PORT); 0 picks a free one"
    )
    server.add_argument(
        "--workers", type=int, help="processes on the port (GATEWAY_WORKERS)"
    )
    server.add_argument(
        "--demo", action="store_true", help="seed demo images and serve /demo"
    )
    server.set_defaults(run=serve)

    db = verbs.add_parser("db", help="the catalog's database").add_subparsers(
        required=True
    )
    db.add_parser(
        "upgrade",
        help="create or migrate the catalog's schema (each start does it too)",
    ).set_defaults(run=commands.db_upgrade)

    moving = verbs.add_parser(
        "migrate",
        help="copy this SQLite catalog into PostgreSQL and the local originals "
        "into S3 (idempotent, resumable, verified)",
    )
    moving.add_argument(
        "--catalog-to", metavar="postgresql://…", help="the catalog's target"
    )
    moving.add_argument(
        "--originals-to",
        metavar="s3://bucket/prefix",
        help="the originals' target (endpoint and credentials: GATEWAY_S3_ENDPOINT, "
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)",
    )
    moving.set_defaults(run=commands.migrate)

    issuer = verbs.add_parser("issuer", help="manage issuers").add_subparsers(
        required=True
    )
    add = issuer.add_parser("add", help="register an issuer with a first signing key")
    add.add_argument("--id", help="issuer UUID (random when omitted)")
    add.add_argument("--name", help="a label for people (default: empty)")
    _key_options(add)
    add.add_argument("--require-exp", action="store_true", help="tokens must carry exp")
    add.add_argument(
        "--max-lifetime",
        type=_seconds,
        help="longest exp - iat, in seconds (1 to 10 years' worth)",
    )
    add.set_defaults(run=commands.issuer_add)
    issuer.add_parser("list", help="list issuers").set_defaults(
        run=commands.issuer_list
    )
    signing_key = issuer.add_parser(
        "signing-key", help="rotate token signing keys"
    ).add_subparsers(required=True)
    key_add = signing_key.add_parser("add", help="add a key (tokens name it as kid)")
    key_add.add_argument("--issuer", required=True, help=_ISSUER_HELP)
    _key_options(key_add)
    key_add.set_defaults(run=commands.signing_key_add)
    key_revoke = signing_key.add_parser("revoke", help="revoke a key at once")
    key_revoke.add_argument("--issuer", required=True, help=_ISSUER_HELP)
    key_revoke.add_argument("--kid", required=True, help="the key to revoke")
    key_revoke.set_defaults(run=commands.signing_key_revoke)

    api_key = issuer.add_parser(
        "key", help="API keys for the /v1 catalog API (sk_…; shown once)"
    ).add_subparsers(required=True)
    for name, run, help_text in (
        ("create", commands.api_key_create, "make another API key"),
        ("list", commands.api_key_list, "list keys (prefixes only)"),
        ("revoke", commands.api_key_revoke, "revoke a key at once"),
    ):
        command = api_key.add_parser(name, help=help_text)
        command.add_argument("--issuer", required=True, help=_ISSUER_HELP)
        if name == "create":
            command.add_argument(
                "--roles",
                help="comma-separated roles the key's holder has (e.g. staff,editor): "
                "they open images with roles above their anonymous size cap",
            )
        if name == "revoke":
            command.add_argument(
                "--prefix",
                required=True,
                help="the key's prefix as `key list` shows it (sk_xxxxxxxxxxxx)",
            )
        command.set_defaults(run=run)

    image = verbs.add_parser("image", help="manage images").add_subparsers(
        required=True
    )
    image_add = image.add_parser("add", help="register an image")
    image_add.add_argument("--issuer", required=True, help="the owner's UUID")
    image_add.add_argument("--id", help="image UUID (random when omitted)")
    image_add.add_argument("--file", help="a local original (JPEG, PNG, WebP, GIF)")
    image_add.add_argument(
        "--public-id", help="where the image already is on Cloudinary"
    )
    image_add.add_argument(
        "--version", type=_version, help="the Cloudinary asset's version number"
    )
    image_add.add_argument(
        "--format", choices=sorted(FORMATS), help="the Cloudinary asset's format"
    )
    image_add.add_argument(
        "--delivery-type",
        choices=sorted(DELIVERY_TYPES),
        help="the Cloudinary asset's type (default: GATEWAY_DELIVERY_TYPE)",
    )
    image_add.set_defaults(run=commands.image_add)
    image_list = image.add_parser("list", help="list an issuer's images")
    image_list.add_argument("--issuer", required=True, help=_ISSUER_HELP)
    image_list.set_defaults(run=commands.image_list)
    image_rm = image.add_parser("rm", help="remove an image")
    image_rm.add_argument("--id", required=True, help="the image's UUID")
    image_rm.add_argument(
        "--preserve-on-disk", action="store_true", help="keep the original file"
    )
    image_rm.set_defaults(run=commands.image_rm)

    token = verbs.add_parser("token", help="mint tokens").add_subparsers(required=True)
    token_mint = token.add_parser(
        "mint",
        help="mint a token and its delivery URL",
        description="Mint a token for one of an issuer's images and print it "
        "with its delivery URL.",
        epilog=_TRANSFORMATION_KEYS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    token_mint.add_argument("--issuer", required=True, help="the signer's UUID")
    token_mint.add_argument(
        "--image", required=True, help="the image's UUID (the issuer's own)"
    )
    token_mint.add_argument(
        "--transformations",
        default="[]",
        help="a JSON list of steps (keys below; default: [])",
    )
    token_mint.add_argument(
        "--ttl", type=int, help="seconds until exp (default: no exp)"
    )
    token_mint.add_argument(
        "--kid", type=_given, help="signing key (newest when omitted)"
    )
    token_mint.add_argument(
        "--bind",
        action="store_true",
        help="set sub: the token works for this image only",
    )
    token_mint.set_defaults(run=commands.token_mint)
    access = token.add_parser(
        "access",
        help="mint an access token for a user (Bearer, X-Session-Token or cookie)",
    )
    access.add_argument("--issuer", required=True, help="issuer UUID")
    access.add_argument("--sub", required=True, help="the user it identifies")
    access.add_argument(
        "--scope",
        default="images:read",
        help="space- or comma-separated: images:read, images:write (default images:read)",
    )
    access.add_argument("--roles", help="comma-separated roles (e.g. staff,editor)")
    access.add_argument(
        "--ttl",
        type=int,
        default=3600,
        help="seconds until exp (default 3600; at most GATEWAY_ACCESS_TOKEN_MAX_LIFETIME)",
    )
    access.add_argument("--kid", type=_given, help="signing key (newest when omitted)")
    access.set_defaults(run=commands.token_access)
    return parser


def _key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret", type=_given, help="shared secret (random when omitted)"
    )
    parser.add_argument("--kid", type=_given, help="key id (random when omitted)")
    parser.add_argument(
        "--algorithm",
        default="HS256",
        choices=sorted(ALLOWED_ALGORITHMS),
        help="HMAC algorithm of the key (default: HS256)",
    )


def _given(raw: str) -> str:
    """An argparse type: not empty (an empty `--secret ""`, say from an unset
    shell variable, was silently replaced by a random one)."""
    if not raw:
        raise argparse.ArgumentTypeError("must not be empty (omit it instead)")
    return raw


def _bounded(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` (a database
    integer holds 64 bits; a number past it was a traceback)."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}")
        return value

    return parse


_seconds = _bounded(1, 10 * 366 * 24 * 3600)
_port = _bounded(0, 65535)
_version = _bounded(1, 2**53)
