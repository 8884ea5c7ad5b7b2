"""Dependencies point one way: gateway -> transforms, signing; never back, never across.

Heavy third-party libraries stay in one room each: Pillow in
`transforms/render/pillow.py`, the Cloudinary SDK in `transforms/cloudinary/`
and `gateway/cloudinary/`, the S3 SDK in `gateway/originals/s3.py`.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "signing", "transforms")
FORBIDDEN = {
    "signing": {"aiohttp", "gateway", "transforms", "PIL"},
    "transforms": {"aiohttp", "gateway", "signing"},
}


def imported_roots(path: Path) -> set[str]:
    """The top-level names of a module's absolute imports (relative ones are banned)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def modules(package: str) -> list[Path]:
    """Every module of a package, subpackages included."""
    return sorted((ROOT / package).rglob("*.py"))


def users_of(root: str) -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in modules(package)
        if root in imported_roots(path)
    }


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_pure_package_imports_nothing_forbidden(package: str) -> None:
    files = modules(package)
    assert files
    for path in files:
        bad = imported_roots(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_subpackages_are_walked() -> None:
    found = {path.relative_to(ROOT).as_posix() for path in modules("transforms")}
    assert "transforms/render/plan.py" in found
    assert "transforms/cloudinary/compile.py" in found


def test_imported_roots_tell_our_cloudinary_package_from_the_sdk() -> None:
    assert "cloudinary" not in imported_roots(
        ROOT / "transforms/cloudinary/__init__.py"
    )
    assert "cloudinary" in imported_roots(ROOT / "transforms/cloudinary/compile.py")


def test_only_the_pillow_renderer_imports_pil() -> None:
    assert users_of("PIL") == {"transforms/render/pillow.py"}


def test_only_the_s3_store_imports_the_s3_sdk() -> None:
    for root in ("aiobotocore", "botocore"):
        assert users_of(root) == {"gateway/originals/s3.py"}


def test_only_the_cloudinary_rooms_import_the_sdk() -> None:
    rooms = ("transforms/cloudinary/", "gateway/cloudinary/")
    users = users_of("cloudinary")
    assert users
    assert all(user.startswith(rooms) for user in users), users


@pytest.mark.parametrize(
    ("module", "unloaded"),
    [
        pytest.param("transforms", ("cloudinary", "PIL"), id="transforms"),
        pytest.param("transforms.render", ("cloudinary", "PIL"), id="planning"),
        pytest.param("transforms.render.pillow", ("cloudinary",), id="rendering"),
        # The SDK reads CLOUDINARY_URL at import, and refuses a bad one with a
        # traceback: the gateway loads it only when it first needs it.
        pytest.param("gateway.cli", ("cloudinary",), id="gateway"),
        # The S3 SDK is a third of a second to import: only with S3 configured.
        pytest.param("gateway.app", ("botocore", "aiobotocore"), id="no-s3"),
    ],
)
def test_importing_loads_no_needless_library(
    module: str, unloaded: tuple[str, ...]
) -> None:
    """Local rendering never loads the SDK; importing the model loads neither."""
    check = (
        f"import sys, {module}; "
        f"loaded = [m for m in {unloaded!r} if m in sys.modules]; "
        "sys.exit(', '.join(loaded) or None)"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_renderer_does_not_import_the_cloudinary_compiler() -> None:
    for path in modules("transforms/render"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            assert not [n for n in names if n.startswith("transforms.cloudinary")], path


def test_every_package_folder_is_a_regular_package() -> None:
    """A folder without `__init__.py` is left out of a built wheel (setuptools'
    `packages.find`): the editable install would hide it, users would not."""
    root = Path(__file__).resolve().parents[1]
    missing = [
        str(folder.relative_to(root))
        for top in ("gateway", "signing", "transforms")
        for folder in [root / top, *(root / top).rglob("*")]
        if folder.is_dir()
        and any(folder.glob("*.py"))
        and not (folder / "__init__.py").exists()
    ]
    assert missing == []
