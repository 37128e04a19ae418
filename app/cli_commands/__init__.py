"""Sub-commands beyond the core ones, one module per noun, each with ``register(sub)``.

Every module here that defines ``register(subparsers)`` is picked up by ``crowdlab``.
"""

from __future__ import annotations

import importlib
import pkgutil


def register_all(subparsers) -> None:
    """Let every module add its sub-commands."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
