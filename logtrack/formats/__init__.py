"""Log formats: a registry of declarative parsers, one module per format family (DESIGN §3)."""

from __future__ import annotations

import importlib
import pkgutil

from .base import LogFormat, Parsed, get_format, register, registry

__all__ = ["LogFormat", "Parsed", "get_format", "register", "registry", "load_builtins"]

_LOADED = False


def load_builtins() -> None:
    """Import every module of this package once: preset modules register their formats,
    shared-machinery modules register nothing (so no list of which is which to keep)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if not mod.startswith("_"):
            importlib.import_module(f"{__name__}.{mod}")
