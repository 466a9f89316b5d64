"""Records of the shop simulation and the ground truth computed from them.

The truth is computed from the records that were actually written (after trimming), never from
the plan, and the session count is cross-checked against the simulated sessions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

if __package__:
    from .logpools import ClfClock, utc_day
else:
    from logpools import ClfClock, utc_day

SESSION_TIMEOUT = 30 * 60
EVENT_LABELS = {"order": "orders", "signup": "signups", "login": "logins", "cart_add": "cart_adds"}

DEFINITIONS = {
    "visitor": "a distinct client IP + user agent among people (not bots, tools, health checks, or lines without "
    "a parsable request); each visitor has its own /24 (IPv4) or /48 (IPv6) network + user agent, except the "
    "office NAT pair (one IP, two browsers)",
    "session": "GA4 rules: a visitor's non-static requests split where the gap exceeds 30 min; gaps are always "
    "< 10 min inside and > 45 min between sessions; sessions are never split at midnight",
    "static": "paths ending in .css, .js, .png or .ico (/static/..., /favicon.ico)",
    "pageview": "a person's GET with status 200 of a page (not /api/, not static): /, /products/{id}, "
    "/category/{slug}, /search?q=, /cart, /login, /signup, /checkout, /orders/{order_id}/confirmation",
    "orders": "POST /api/v1/orders 201",
    "signups": "POST /api/v1/users 201",
    "logins": "POST /api/v1/sessions 200",
    "cart_adds": "POST /api/v1/cart/items 201",
    "by_day": "UTC calendar days; sessions count on the day they start; visitors on each day they are active",
}


@dataclass(slots=True)
class Rec:
    """One request of the simulation (or one malformed line, when `raw` is set)."""

    ts: float  # when the request happened (the logged timestamp, UTC epoch)
    wts: float  # when the line was written: decides the position in the file
    ip: str
    user: str
    method: str | None  # None: the request line is not METHOD TARGET PROTOCOL (target holds it)
    target: str
    proto: str
    status: int
    size: str
    ref: str
    ua: str
    actor: int  # visitor index for people, -1 for everything else
    kind: str  # people: page | static | api | other; else: bot | health | noise | malformed
    label: str = ""
    raw: str | None = None

    def render(self, clock: ClfClock) -> bytes:
        """The nginx combined line, newline included."""
        if self.raw is not None:
            return self.raw.encode("utf-8")
        req = self.target if self.method is None else f"{self.method} {self.target} {self.proto}"
        return (f'{self.ip} - {self.user} [{clock.render(int(self.ts))}] "{req}" {self.status} {self.size} '
                f'"{self.ref}" "{self.ua}"\n').encode()


def _sessions(people: list[Rec]) -> dict[int, list[list[int]]]:
    """Per visitor, the logged seconds of their non-static requests grouped into sessions."""
    times: dict[int, list[int]] = defaultdict(list)
    for r in people:
        if r.kind != "static":
            times[r.actor].append(int(r.ts))
    out: dict[int, list[list[int]]] = {}
    for actor, ts in times.items():
        ts.sort()
        groups = [[ts[0]]]
        for a, b in zip(ts, ts[1:], strict=False):
            if b - a > SESSION_TIMEOUT:
                groups.append([])
            groups[-1].append(b)
        out[actor] = groups
    return out


def compute_truth(records: list[Rec], kept: list[tuple[str, list[Rec]]], *, seed: int, lines: int,
                  start: datetime, days: int, utc_offset: str) -> dict:
    """The ground truth of a shop log, from its records (`kept` = the simulated sessions)."""
    people = [r for r in records if r.actor >= 0]
    sessions = _sessions(people)
    n_sessions = sum(len(g) for g in sessions.values())
    if n_sessions != len(kept):  # the simulation broke its own gap guarantees
        raise RuntimeError(f"simulated {len(kept)} sessions, the records give {n_sessions}")
    labels = Counter(r.label for r in people if r.label)
    day: dict[str, Counter] = defaultdict(Counter)
    day_visitors: dict[str, set] = defaultdict(set)
    for groups in sessions.values():
        for g in groups:
            day[utc_day(g[0])]["sessions"] += 1
    for r in people:
        d = utc_day(int(r.ts))
        if r.kind != "static":
            day_visitors[d].add(r.actor)
        if r.kind == "page":
            day[d]["pageviews"] += 1
        if r.label in EVENT_LABELS:
            day[d][EVENT_LABELS[r.label]] += 1
    by_day = {}
    for d in sorted(set(day) | set(day_visitors)):
        by_day[d] = {"visitors": len(day_visitors[d]), "sessions": day[d]["sessions"],
                     "pageviews": day[d]["pageviews"]}
        by_day[d].update({k: day[d][k] for k in EVENT_LABELS.values()})
    kinds = Counter(r.kind for r in records if r.actor < 0)
    parsed = [r for r in records if r.raw is None]
    return {
        "format": "shop (nginx combined)",
        "seed": seed,
        "lines": lines,
        "start": start.isoformat(),
        "end": datetime.fromtimestamp(int(max(r.ts for r in parsed)), UTC).isoformat() if parsed else None,
        "days": days,
        "utc_offset": utc_offset,
        "visitors": len(sessions),
        "sessions": n_sessions,
        "pageviews": sum(1 for r in people if r.kind == "page"),
        **{name: labels[label] for label, name in EVENT_LABELS.items()},
        "login_failures": labels["login_failed"],
        "signup_failures": labels["signup_failed"],
        "order_failures": labels["order_failed"],
        "users_seen": len({r.user for r in people if r.user != "-"}),
        "people_requests": len(people),
        "people_static_requests": sum(1 for r in people if r.kind == "static"),
        "people_api_requests": sum(1 for r in people if r.kind == "api"),
        "bot_requests": kinds["bot"],
        "health_checks": kinds["health"],
        "unparsable_request_lines": kinds["noise"],
        "malformed_lines": kinds["malformed"],
        "quirky_lines": dict(sorted(Counter(
            r.label for r in records if r.actor < 0 and r.label and r.kind != "malformed").items())),
        "malformed_kinds": dict(sorted(Counter(r.label for r in records if r.kind == "malformed").items())),
        "app_requests_with_x22_user_agent": sum(1 for r in people if "\\x22" in r.ua),
        "sessions_by_entry": dict(sorted(Counter(e for e, _ in kept).items())),
        "status_classes": dict(sorted(Counter(f"{r.status // 100}xx" for r in parsed).items())),
        "by_day": by_day,
        "definitions": DEFINITIONS,
    }
