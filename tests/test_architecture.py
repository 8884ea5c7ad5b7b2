"""Dependencies point one way: gateway -> transforms, signing; never back, never across."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "signing": {"aiohttp", "gateway", "transforms", "PIL"},
    "transforms": {"aiohttp", "gateway", "signing"},
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_pure_package_imports_nothing_forbidden(package: str) -> None:
    files = sorted((ROOT / package).glob("*.py"))
    assert files
    for path in files:
        bad = imported_roots(path) & FORBIDDEN[package]
        assert not bad, f"{path.name} imports {bad}"


def test_only_the_cloudinary_compiler_imports_the_sdk() -> None:
    users = {
        path.relative_to(ROOT).as_posix()
        for package in ("gateway", "signing", "transforms")
        for path in (ROOT / package).glob("*.py")
        if "cloudinary" in imported_roots(path)
    }
    assert users == {"transforms/cloudinary.py"}
