"""Log formats: a registry of declarative parsers, one module per format family (DESIGN §3)."""

from __future__ import annotations

import importlib
import pkgutil

from .base import LogFormat, Parsed, get_format, register, registry

__all__ = ["LogFormat", "Parsed", "get_format", "register", "registry", "load_builtins"]

_LOADED = False
# Modules that hold shared machinery rather than presets.
_INFRA = {"base", "convert", "columns", "variables", "template", "clftime", "words", "csvplan", "detect", "jsonmap", "jsonread", "w3c_core", "w3c_fields", "delimited"}


def load_builtins() -> None:
    """Import every preset module in this package once (each registers its formats)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if mod not in _INFRA and not mod.startswith("_"):
            importlib.import_module(f"{__name__}.{mod}")
