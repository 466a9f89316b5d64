"""Shared building blocks of the log generators: user agents, client addresses, time rendering.

Used by `generate.py` (combined benchmark logs) and `shopsim.py` (the shop simulation with ground
truth). Everything here is deterministic: callers pass their own `random.Random`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

UA_FILE = Path(__file__).with_name("user_agents.txt")
HUMAN_KINDS = ("desktop", "mobile", "tablet")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# First octets of public IPv4 space that ISPs and clouds announce; private, loopback, CGNAT,
# multicast and reserved blocks never appear as a client here (10.x is added on purpose for probes).
PUBLIC_FIRST_OCTETS = tuple(o for o in range(1, 224) if o not in (10, 100, 127, 169, 172, 192, 198, 203))


@dataclass(frozen=True)
class UserAgent:
    """One line of user_agents.txt."""

    kind: str  # desktop | mobile | tablet | bot | tool | feed | other
    weight: int
    era: str  # modern | 2015
    ua: str


@cache
def load_user_agents() -> tuple[UserAgent, ...]:
    """All user agents of `user_agents.txt`, in file order."""
    out = []
    for raw in UA_FILE.read_text(encoding="utf-8").splitlines():
        if not raw or raw.startswith("#"):
            continue
        kind, weight, era, ua = raw.split("\t", 3)
        out.append(UserAgent(kind, int(weight), era, ua))
    return tuple(out)


def user_agents(kinds: tuple[str, ...], era: str | None = None) -> list[UserAgent]:
    """User agents of the given kinds (and era, when given), in file order."""
    return [u for u in load_user_agents() if u.kind in kinds and (era is None or u.era == era)]


def find_ua(fragment: str) -> str:
    """The first user agent containing `fragment` (for the simulation's named bots and tools)."""
    for u in load_user_agents():
        if fragment in u.ua:
            return u.ua
    raise KeyError(fragment)


def random_ipv4(rng: random.Random) -> str:
    """A public-looking IPv4 address."""
    return f"{rng.choice(PUBLIC_FIRST_OCTETS)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def random_ipv6(rng: random.Random) -> str:
    """An IPv6 address in the documentation prefix 2001:db8::/32, compressed as servers log it."""
    groups = [rng.randrange(1, 0x10000) for _ in range(2)]
    tail = [rng.randrange(0x10000) for _ in range(2)]
    return f"2001:db8:{groups[0]:x}:{groups[1]:x}::{tail[0]:x}:{tail[1]:x}"


def ip_prefix(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of an address: what logtrack truncates IPs to."""
    if ":" in ip:
        return ":".join(ip.split(":")[:3])
    return ip.rsplit(".", 1)[0]


def parse_offset(offset: str) -> timedelta:
    """`+0100` / `-0530` as a timedelta."""
    sign = -1 if offset[0] == "-" else 1
    return sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))


class ClfClock:
    """Renders epoch seconds as `[10/Oct/2026:13:55:36 +0200]` bodies, fast.

    Per-day prefixes and per-second-of-day suffixes are tables, so a line costs two lookups and a
    concatenation instead of a strftime.
    """

    def __init__(self, start_utc: datetime, days: int, offset: str) -> None:
        self.offset = offset
        self.shift = int(parse_offset(offset).total_seconds())
        # One day of margin before the start: lines may be out of order by a few seconds.
        local0 = (start_utc + parse_offset(offset)).replace(hour=0, minute=0, second=0, microsecond=0)
        local0 -= timedelta(days=1)
        self.local_day0 = int(local0.replace(tzinfo=UTC).timestamp())
        self.days = [
            f"{d.day:02d}/{MONTHS[d.month - 1]}/{d.year}:" for d in (local0 + timedelta(days=i) for i in range(days + 4))
        ]
        self.hms = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d} {offset}" for s in range(86400)]

    def render(self, epoch: int) -> str:
        """`dd/Mon/yyyy:HH:MM:SS +zzzz` for a UTC epoch second, in the clock's offset."""
        local = epoch + self.shift - self.local_day0
        return self.days[local // 86400] + self.hms[local % 86400]


def utc_day(epoch: float) -> str:
    """`YYYY-MM-DD` of a UTC epoch second."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")
