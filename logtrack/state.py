"""The state directory shared by every command (DESIGN §4): salt, delivery ledger, offsets."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir(option: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the state directory: `--state`, else `$XDG_STATE_HOME/logtrack`, created 0700."""
    if option:
        path = Path(option)
    else:
        base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
        path = Path(base) / "logtrack"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
