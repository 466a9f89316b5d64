"""The `sessions` config section (`SessionConfig`) and its durations (DESIGN §4)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .config import Config

_KEYS = {"timeout", "mode", "timezone", "exclude", "reorder_window"}
_DURATION = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?\s*$")


def parse_duration(value: object) -> timedelta | None:
    """`30m`, `1h30m`, `90s`, `10 min` or a number of seconds; None when not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return timedelta(seconds=value) if value >= 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    m = _DURATION.match(value)
    if not m or not any(m.groups()):
        return None
    h, mi, s = (int(g or 0) for g in m.groups())
    return timedelta(hours=h, minutes=mi, seconds=s)


@dataclass(frozen=True)
class SessionConfig:
    """Sessionization settings (defaults: GA4, 30 min, UTC, bots and static excluded, 10 min window)."""

    timeout: timedelta = timedelta(minutes=30)
    mode: str = "ga4"
    timezone: str = "UTC"
    exclude: tuple[str, ...] = ("bots", "static")
    reorder_window: timedelta = timedelta(minutes=10)

    @classmethod
    def from_config(cls, config: Config) -> SessionConfig:
        """Read and validate the `sessions` section (timezone falls back to the top-level key)."""
        sec = config.section("sessions", _KEYS)
        kw: dict = {}
        for key in ("timeout", "reorder_window"):
            if key in sec:
                d = parse_duration(sec[key])
                if d is None or (key == "timeout" and d <= timedelta(0)):
                    raise config.error(("sessions", key), f"must be a duration like 30m, 1h or 90s, not {sec[key]!r}")
                kw[key] = d
        if "mode" in sec:
            if sec["mode"] not in ("ga4", "ua"):
                raise config.error(("sessions", "mode"), f"must be ga4 or ua, not {sec['mode']!r}")
            kw["mode"] = sec["mode"]
        tz, where = (sec["timezone"], ("sessions", "timezone")) if "timezone" in sec else (config.get("timezone"), ("timezone",))
        if tz is not None:
            try:
                ZoneInfo(str(tz))
            except (ZoneInfoNotFoundError, ValueError):
                raise config.error(where, f"unknown time zone {tz!r} (use an IANA name like Europe/Berlin)") from None
            kw["timezone"] = str(tz)
        if "exclude" in sec:
            ex = sec["exclude"] or []
            if not isinstance(ex, list) or any(v not in ("bots", "static") for v in ex):
                raise config.error(("sessions", "exclude"), "must be a list of: bots, static")
            kw["exclude"] = tuple(ex)
        return cls(**kw)
