"""The architecture contracts hold (import-linter, configured in pyproject.toml): the pure
packages import nothing from the app, the edges sit over the services over the database,
the compatibility layers are leaves, and no package or module imports in a cycle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def test_import_contracts_are_kept(repo_root: Path):
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is not installed (pip install -e '.[test]')"
    result = subprocess.run([lint], cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_module_uses_another_modules_private_names(repo_root: Path):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff, "ruff is not installed (pip install -e '.[test]')"
    result = subprocess.run(
        [ruff, "check", "--no-cache", "--preview", "--select", "SLF001,PLC2701",
         "app", "workers", "aggregation", "model"],
        cwd=repo_root, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
