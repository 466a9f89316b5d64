"""The config file (`logtrack.yaml`): what a cron job needs, read only when named (DESIGN §4, §7).

Each stage validates its own section (`identity`, `sessions`, `privacy`, `formats`, `destinations`,
…) from `Config.section(name)`, reporting problems with `Config.doc.error(path, message)` so every
message carries the file, line and key at fault.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .yamlfile import KeyPath, YamlDoc, load_yaml

KNOWN_SECTIONS = {
    "formats", "format", "log_format", "trusted_proxies", "identity", "sessions", "privacy",
    "consent", "enrich", "rules", "report", "destinations", "send", "state", "timezone",
    "max_reject_rate", "hosts",
}


@dataclass
class Config:
    """A loaded config file (or the empty default when none is named)."""

    doc: YamlDoc = field(default_factory=lambda: YamlDoc(data={}, file="<defaults>"))

    @property
    def file(self) -> str | None:
        """The config file's path, or None when running on defaults."""
        return None if self.doc.file == "<defaults>" else self.doc.file

    def section(self, name: str, known: Collection[str] | None = None) -> dict[str, Any]:
        """One top-level mapping (empty when absent); a non-mapping is a ConfigError, and so is a
        key outside `known` when given (the message lists the known keys)."""
        value = self.doc.data.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(self.doc.error((name,), "must be a mapping"))
        for key in value if known is not None else ():
            if key not in known:
                raise self.error((name, key), f"unknown key {key!r} (known: {', '.join(sorted(known))})")
        return value

    def get(self, name: str, default: Any = None) -> Any:
        """A top-level scalar or list value."""
        return self.doc.data.get(name, default)

    def error(self, path: KeyPath, message: str) -> ConfigError:
        """A ConfigError pointing at `path` in this file."""
        return ConfigError(self.doc.error(path, message))


def load_config(path: str | None = None) -> Config:
    """Load `path`, else `$LOGTRACK_CONFIG`, else return defaults. Unknown top-level keys fail."""
    path = path or os.environ.get("LOGTRACK_CONFIG") or None
    if not path:
        return Config()
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError("the config file must be a mapping", file=doc.file, line=1)
    problems = [doc.error((k,), f"unknown key {k!r}") for k in doc.data if k not in KNOWN_SECTIONS]
    if problems:
        raise ConfigError(problems[0], problems=problems)
    return Config(doc=doc)
