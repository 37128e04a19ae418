"""The pure packages never reach into the web app."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("app", "fastapi", "sqlmodel", "starlette")


def _modules_after_import(package: str) -> set[str]:
    code = (
        f"import sys, importlib, pkgutil; import {package};"
        f"[importlib.import_module('{package}.' + m.name)"
        f" for m in pkgutil.iter_modules({package}.__path__)];"
        "print('\\n'.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {line.split(".")[0] for line in out.stdout.splitlines()}


def test_aggregation_imports_nothing_from_the_app():
    assert not _modules_after_import("aggregation") & set(FORBIDDEN)


def test_model_imports_nothing_from_the_app():
    assert not _modules_after_import("model") & set(FORBIDDEN)
