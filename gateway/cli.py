"""The `image-gateway` command: serve, and manage issuers, images and tokens."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Final

from aiohttp import web
from yarl import URL

from gateway.app import create_app
from gateway.catalog import Catalog, CatalogError, ImageRecord
from gateway.config import ConfigError, Settings
from gateway.originals import add_original
from gateway.storage import OriginalStore
from signing import ALLOWED_ALGORITHMS, IssuerPolicy, mint
from transforms import CloudinaryAsset, Transformation, TransformError
from transforms.cloudinary import DELIVERY_TYPES, FORMATS

__all__ = ["delivery_url", "main"]

log = logging.getLogger("gateway")
_EXIT_USAGE: Final = 2


class CommandError(Exception):
    """A command could not do what was asked; the message says why."""


def delivery_url(settings: Settings, image_id: str, token: str) -> str:
    url = settings.base_url / "images" / image_id
    return str(url.with_query(token=token))


def _print(doc: object) -> None:
    print(json.dumps(doc, indent=2))


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    if args.demo:
        settings = dataclasses.replace(settings, demo=True)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    host, port = args.host or settings.host, args.port or settings.port
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
        print=lambda _: print(
            f"image-gateway listening on {URL.build(scheme='http', host=host, port=port)}"
        ),
    )


def _issuer_add(settings: Settings, args: argparse.Namespace) -> None:
    with _catalog(settings) as catalog:
        issuer, key = catalog.add_issuer(
            issuer_id=args.id,
            name=args.name or "",
            secret=args.secret,
            kid=args.kid,
            algorithm=args.algorithm,
            policy=IssuerPolicy(
                require_exp=args.require_exp, max_lifetime=args.max_lifetime
            ),
        )
        api_key = catalog.add_api_key(issuer.id)
    _print(
        {
            "id": issuer.id,
            "name": issuer.name,
            "kid": key.kid,
            "algorithm": key.algorithm,
            "secret": key.secret,
            "api_key": api_key,
        }
    )


def _api_key_create(settings: Settings, args: argparse.Namespace) -> None:
    with _catalog(settings) as catalog:
        _print({"issuer": args.issuer, "api_key": catalog.add_api_key(args.issuer)})


def _api_key_list(settings: Settings, args: argparse.Namespace) -> None:
    with _catalog(settings) as catalog:
        _print(
            [
                {
                    "prefix": f"sk_{k.prefix}",
                    "createdAt": k.created_at,
                    "revokedAt": k.revoked_at,
                }
                for k in catalog.api_keys(args.issuer)
            ]
        )


def _api_key_revoke(settings: Settings, args: argparse.Namespace) -> None:
    with _catalog(settings) as catalog:
        catalog.revoke_api_key(args.issuer, args.prefix)
    _print({"issuer": args.issuer, "prefix": args.prefix, "revoked": True})


def _issuer_list(settings: Settings, args: argparse.Namespace) -> None:
    with _catalog(settings) as catalog:
        _print(
            [
                {"id": i.id, "name": i.name, "kids": [k.kid for k in i.keys]}
                for i in catalog.issuers()
            ]
        )


def _signing_key_add(settings: Settings, args: argparse.Namespace) -> None:
    with _catalog(settings) as catalog:
        key = catalog.add_key(
            args.issuer, secret=args.secret, kid=args.kid, algorithm=args.algorithm
        )
    _print({"issuer": args.issuer, "kid": key.kid, "secret": key.secret})


def _signing_key_revoke(settings: Settings, args: argparse.Namespace) -> None:
    with _catalog(settings) as catalog:
        catalog.revoke_key(args.issuer, args.kid)
    _print({"issuer": args.issuer, "kid": args.kid, "revoked": True})


def _image_add(settings: Settings, args: argparse.Namespace) -> None:
    if args.file is None and args.public_id is None:
        raise CommandError("give --file, --public-id, or both")
    asset = None
    if args.public_id is not None:
        try:
            asset = CloudinaryAsset(
                public_id=args.public_id,
                version=args.version,
                format=args.format,
                delivery_type=args.delivery_type or settings.delivery_type,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
    with _catalog(settings) as catalog:
        if args.file is None:
            record = catalog.add_image(
                issuer_id=args.issuer, image_id=args.id, cloudinary=asset
            )
        else:
            path = Path(args.file)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
            try:
                record = add_original(
                    catalog,
                    OriginalStore(settings.originals),
                    settings.limits,
                    issuer_id=args.issuer,
                    data=data,
                    filename=path.name,
                    image_id=args.id,
                    cloudinary=asset,
                )
            except TransformError as exc:
                raise CommandError(f"{path}: {exc.detail}") from exc
    _print(_image_doc(record))


def _image_rm(settings: Settings, args: argparse.Namespace) -> None:
    with _catalog(settings) as catalog:
        record = catalog.remove_image(args.id)
        if record is None:
            raise CommandError(f"no image {args.id}")
        original = record.original
        if (
            original is not None
            and not args.preserve_on_disk
            and catalog.originals_in_use(original.sha256) == 0
        ):
            OriginalStore(settings.originals).remove(original.sha256)
    _print({"id": args.id, "removed": True})


def _image_list(settings: Settings, args: argparse.Namespace) -> None:
    with _catalog(settings) as catalog:
        _print([_image_doc(r) for r in catalog.images(args.issuer)])


def _image_doc(record: ImageRecord) -> dict[str, object]:
    doc: dict[str, object] = {"id": record.id, "issuer": record.issuer_id}
    if (asset := record.cloudinary) is not None:
        doc.update(
            publicId=asset.public_id,
            version=asset.version,
            format=asset.format,
            deliveryType=asset.delivery_type,
        )
    if (original := record.original) is not None:
        doc.update(
            originalFilename=record.original_filename,
            mediaType=original.media_type,
            fileSize=original.file_size,
            width=original.width,
            height=original.height,
            sha256=original.sha256,
        )
    return doc


def _token_mint(settings: Settings, args: argparse.Namespace) -> None:
    try:
        transformations = json.loads(args.transformations)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--transformations is not JSON: {exc}") from exc
    try:
        Transformation.from_json(transformations, settings.limits)
    except TransformError as exc:
        raise CommandError(f"{exc.pointer}: {exc.detail}") from exc
    with _catalog(settings) as catalog:
        issuer = catalog.issuer(args.issuer)
        if issuer is None or not issuer.keys:
            raise CommandError(f"no issuer {args.issuer} with an active key")
        key = issuer.key(args.kid) if args.kid else issuer.keys[0]
        if key is None:
            raise CommandError(f"issuer {args.issuer} has no active key {args.kid}")
    token = mint(
        key,
        issuer_id=issuer.id,
        transformations=transformations,
        ttl=args.ttl,
        subject=args.image if args.bind else None,
        audience=settings.token_audience,
    )
    _print({"token": token, "url": delivery_url(settings, args.image, token)})


def _catalog(settings: Settings) -> closing[Catalog]:
    return closing(Catalog(settings.database))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="image-gateway",
        description="Signed-URL image transformation gateway. Settings come from "
        "GATEWAY_* variables and CLOUDINARY_URL (see the README).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="bind address (GATEWAY_HOST)")
    serve.add_argument("--port", type=int, help="TCP port (GATEWAY_PORT)")
    serve.add_argument(
        "--demo", action="store_true", help="seed demo images and serve /demo"
    )
    serve.set_defaults(run=_serve)

    issuer = commands.add_parser("issuer", help="manage issuers").add_subparsers(
        dest="action", required=True
    )
    add = issuer.add_parser("add", help="register an issuer with a first signing key")
    add.add_argument("--id", help="issuer UUID (random when omitted)")
    add.add_argument("--name")
    _key_options(add)
    add.add_argument("--require-exp", action="store_true", help="tokens must carry exp")
    add.add_argument("--max-lifetime", type=int, help="longest exp - iat, in seconds")
    add.set_defaults(run=_issuer_add)
    issuer.add_parser("list", help="list issuers").set_defaults(run=_issuer_list)
    signing_key = issuer.add_parser(
        "signing-key", help="rotate token signing keys"
    ).add_subparsers(dest="key_action", required=True)
    key_add = signing_key.add_parser("add", help="add a key (tokens name it as kid)")
    key_add.add_argument("--issuer", required=True)
    _key_options(key_add)
    key_add.set_defaults(run=_signing_key_add)
    key_revoke = signing_key.add_parser("revoke", help="revoke a key at once")
    key_revoke.add_argument("--issuer", required=True)
    key_revoke.add_argument("--kid", required=True)
    key_revoke.set_defaults(run=_signing_key_revoke)

    api_key = issuer.add_parser(
        "key", help="API keys for the /v1 catalog API (sk_…; shown once)"
    ).add_subparsers(dest="key_action", required=True)
    for name, run, help_text in (
        ("create", _api_key_create, "make another API key"),
        ("list", _api_key_list, "list keys (prefixes only)"),
        ("revoke", _api_key_revoke, "revoke a key at once"),
    ):
        command = api_key.add_parser(name, help=help_text)
        command.add_argument("--issuer", required=True)
        if name == "revoke":
            command.add_argument("--prefix", required=True, help="sk_xxxxxxxxxxxx")
        command.set_defaults(run=run)

    image = commands.add_parser("image", help="manage images").add_subparsers(
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
    image_add.set_defaults(run=_image_add)
    image_list = image.add_parser("list", help="list an issuer's images")
    image_list.add_argument("--issuer", required=True)
    image_list.set_defaults(run=_image_list)
    image_rm = image.add_parser("rm", help="remove an image")
    image_rm.add_argument("--id", required=True)
    image_rm.add_argument(
        "--preserve-on-disk", action="store_true", help="keep the original file"
    )
    image_rm.set_defaults(run=_image_rm)

    token = commands.add_parser("token", help="mint tokens").add_subparsers(
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
    token_mint.set_defaults(run=_token_mint)
    return parser


def _key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secret", help="shared secret (random when omitted)")
    parser.add_argument("--kid", help="key id (random when omitted)")
    parser.add_argument(
        "--algorithm", default="HS256", choices=sorted(ALLOWED_ALGORITHMS)
    )


def main(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ
) -> int:
    args = _parser().parse_args(argv)
    run: Callable[[Settings, argparse.Namespace], None] = args.run
    try:
        run(Settings.from_env(environ), args)
    except (ConfigError, CatalogError, CommandError, ValueError) as exc:
        print(f"image-gateway: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    return 0
