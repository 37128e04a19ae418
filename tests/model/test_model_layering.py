"""model/ stays pure: no import of the web app, the web framework or the database layer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import model

FORBIDDEN = {"app", "fastapi", "sqlmodel", "sqlalchemy", "starlette", "workers", "huey"}


def _imported_roots(source: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_model_package_imports_no_app_web_or_database_module() -> None:
    package = Path(model.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert files
    offenders = {str(f.relative_to(package)): _imported_roots(f) & FORBIDDEN for f in files}
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_config_module_does_not_import_torch() -> None:
    code = "import sys, model.config; print('torch' in sys.modules, 'app' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert out.stdout.strip() == "False False"
