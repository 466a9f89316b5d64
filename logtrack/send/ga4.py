"""Google Analytics 4 Measurement Protocol (`/mp/collect`, `--validate`: `/debug/mp/collect`).

One request carries up to 25 events of one user (client_id, user_id, consent, IP, user agent and
user properties are request-level), each with its own `timestamp_micros`. `/mp/collect` answers
2xx even for bad payloads, so names, parameters and user properties are validated here first, and
events older than the 72 h GA4 accepts (minus a margin) are refused: GA4 would silently re-date them.
GA4 cannot deduplicate: batches in flight at a crash may arrive twice (DESIGN §6).
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import jsonarrow as J
from .. import schema
from ..errors import ConfigError
from .base import (
    Destination,
    Prepared,
    Reasons,
    Request,
    Verdict,
    factorize_rows,
    join_endpoint,
    load_routes,
    map_distinct,
    route_rows,
)
from .summary import SendOptions

DEFAULT_ENDPOINT = "https://www.google-analytics.com"
COLLECT_PATH, DEBUG_PATH = "/mp/collect", "/debug/mp/collect"

# Source: developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events,
# "Limitations".
MAX_EVENTS_PER_REQUEST = 25
MAX_PARAMS_PER_EVENT = 25
MAX_USER_PROPERTIES = 25
MAX_NAME_CHARS = 40  # event and parameter names
MAX_PARAM_VALUE_CHARS = 100
MAX_USER_PROPERTY_NAME_CHARS = 24
MAX_USER_PROPERTY_VALUE_CHARS = 36
MAX_BODY_BYTES = 130_000  # "The post body must be smaller than 130kB"
# Source: .../protocol/ga4/reference, timestamp_micros: events can be backdated up to 72 hours
# (older ones are re-dated, not rejected). The margin covers clock skew and time spent retrying.
API_MAX_AGE_HOURS = 72
DEFAULT_MAX_AGE_HOURS = 71.0
DEFAULT_ENGAGEMENT_TIME_MSEC = 100  # the documented example; needed for users to show as active
# Source: support.google.com/analytics/answer/13316687 ("[GA4] Event naming rules", web).
RESERVED_EVENT_NAMES = frozenset("""
    app_remove app_store_refund app_store_subscription_cancel app_store_subscription_renew click
    error file_download first_open first_visit form_start form_submit in_app_purchase page_view
    scroll session_start user_engagement view_complete video_progress video_start
    view_search_results""".split())
RESERVED_PARAM_NAMES = frozenset({"engagement_time_msec", "gclid", "session_id", "session_number"})
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")
RESERVED_USER_PROPERTY_NAMES = frozenset({"first_open_time", "first_visit_time",
                                          "last_deep_link_referrer", "user_id",
                                          "first_open_after_install"})
USER_PROPERTY_PREFIXES = ("_", "firebase_", "ga_", "google_")
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_INDEX_RE = re.compile(r"index: \[(\d+)\]")

REFUSAL_HINT = ("GA4 re-dates events older than 72 h, so logtrack does not send them. To keep "
                "history, write the events dataset (`logtrack report LOGS --rules PATH -o DIR`) or "
                "import it where history is accepted (Mixpanel /import, Amplitude batch API, "
                "PostHog historical_migration); select recent events with --since 70h.")


def check_name(name: str | None, kind: str) -> str | None:
    """Why `name` is not a valid GA4 event or parameter name (None when valid)."""
    if not name:
        return f"{kind} name is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"{kind} name {name!r} is longer than {MAX_NAME_CHARS} characters"
    if not NAME_RE.fullmatch(name):
        return f"{kind} name {name!r} must start with a letter and hold only letters, digits and _"
    reserved = RESERVED_EVENT_NAMES if kind == "event" else RESERVED_PARAM_NAMES
    if name in reserved:
        return f"{kind} name {name!r} is reserved by GA4"
    if name.startswith(RESERVED_PREFIXES):
        return f"{kind} name {name!r} uses a prefix reserved by GA4"
    return None


def user_properties(text: str | None) -> tuple[str | None, str | None]:
    """(GA4 `user_properties` JSON, None) or (None, reason) for one user_properties_json."""
    if not text:
        return None, None
    try:
        props = json.loads(text)
    except ValueError:
        return None, "user_properties_json is not valid JSON"
    if not isinstance(props, dict) or not props:
        return None, None
    if len(props) > MAX_USER_PROPERTIES:
        return None, f"more than {MAX_USER_PROPERTIES} user properties"
    out = {}
    for k, v in props.items():
        if len(k) > MAX_USER_PROPERTY_NAME_CHARS or not NAME_RE.fullmatch(k):
            return None, f"user property name {k!r} is invalid (≤{MAX_USER_PROPERTY_NAME_CHARS} letters, digits, _)"
        if k in RESERVED_USER_PROPERTY_NAMES or k.startswith(USER_PROPERTY_PREFIXES):
            return None, f"user property name {k!r} is reserved by GA4"
        if isinstance(v, str) and len(v) > MAX_USER_PROPERTY_VALUE_CHARS:
            return None, f"user property {k!r}: value longer than {MAX_USER_PROPERTY_VALUE_CHARS} characters"
        out[k] = {"value": v}
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")), None


def client_id(source: str | None) -> str | None:
    """A stable client id in the `<10 digits>.<10 digits>` form GA expects (random.first-seen)."""
    if source is None:
        return None
    h = hashlib.blake2b(source.encode(), digest_size=16, person=b"logtrack-ga4cid").digest()
    a = 1_000_000_000 + int.from_bytes(h[:8]) % 1_000_000_000
    b = 1_500_000_000 + int.from_bytes(h[8:]) % 200_000_000  # a plausible first-seen time
    return f"{a}.{b}"


def session_number(session: str | None) -> int | None:
    """A stable numeric GA4 session_id (GA's own are 10-digit numbers) from logtrack's id."""
    if session is None:
        return None
    h = hashlib.blake2b(session.encode(), digest_size=8, person=b"logtrack-ga4sid").digest()
    return 1_000_000_000 + int.from_bytes(h) % 9_000_000_000


class GA4(Destination):
    """The GA4 Measurement Protocol destination."""

    name = "ga4"
    dedups = False
    max_batch_events = MAX_EVENTS_PER_REQUEST
    max_batch_bytes = MAX_BODY_BYTES
    gzip = False  # the Measurement Protocol documents plain JSON bodies only
    has_validation = True
    refusal_hint = REFUSAL_HINT

    def __init__(self, options: SendOptions) -> None:
        from .base import env_or

        section = options.config.section("destinations").get("ga4") or {}
        self.routes = load_routes(
            "ga4", options.config, env_or(options.env),
            {"measurement_id": "LOGTRACK_GA4_MEASUREMENT_ID", "api_secret": "LOGTRACK_GA4_API_SECRET"},
            ("measurement_id", "api_secret"), allow_missing=options.dry_run,
            extra_keys=("endpoint", "max_age_hours", "engagement_time_msec"))
        self.base = options.endpoint or section.get("endpoint") or DEFAULT_ENDPOINT
        max_age = float(section.get("max_age_hours", DEFAULT_MAX_AGE_HOURS))
        if not 0 < max_age <= DEFAULT_MAX_AGE_HOURS:
            raise ConfigError(f"must be between 0 and {DEFAULT_MAX_AGE_HOURS:g} (GA4 re-dates events "
                              f"older than {API_MAX_AGE_HOURS} h; the margin can only grow)",
                              file=options.config.file, key="destinations.ga4.max_age_hours")
        self.max_age_us = int(max_age * 3600 * 1_000_000)
        self.max_age_hours = max_age
        self.engagement_ms = int(section.get("engagement_time_msec", DEFAULT_ENGAGEMENT_TIME_MSEC))

    def secrets(self) -> list[str]:
        """The API secrets of every route."""
        return self.routes.secrets(("api_secret",))

    def prepare(self, events: pa.Table, now_us: int) -> Prepared:
        """Refuse (no route, too old, invalid names/params/user properties) and encode."""
        t = schema.conform(events, schema.EVENTS).combine_chunks()
        n = t.num_rows
        route, why = route_rows(t, self.routes, "GA4 credentials", "ga4")
        ts = t["ts"].cast(pa.int64()).to_numpy(zero_copy_only=False)
        why.add(ts < now_us - self.max_age_us,
                f"too old: GA4 takes events up to {API_MAX_AGE_HOURS} h old; logtrack sends up to "
                f"{self.max_age_hours:g} h (destinations.ga4.max_age_hours)")
        name_reason = map_distinct(t["event_name"], lambda v: check_name(v, "event"))
        why.add(name_reason != None, name_reason)  # noqa: E711
        self._check_params(t, why)
        up = map_distinct(t["user_properties_json"], user_properties)
        up_reason = np.array([r for _, r in up], dtype=object) if n else np.empty(0, object)
        why.add(up_reason != None, up_reason)  # noqa: E711

        ok = why.ok()
        refused_idx = np.flatnonzero(~ok)
        ids = t["event_id"].to_numpy(zero_copy_only=False)
        refused_ids = ids[refused_idx].tolist()
        refused_reasons = why.values[refused_idx].tolist()
        keep = pa.array(ok)
        t, ts, route = t.filter(keep), ts[ok], route[ok]
        up_json = np.array([j for j, _ in up], dtype=object)[ok] if n else np.empty(0, object)
        if not t.num_rows:
            return Prepared([], pa.array([], pa.string()), np.zeros(0, np.int64), np.zeros(0, np.int64),
                            [], [], refused_ids, refused_reasons)

        source = pc.coalesce(t["anonymous_id"], pc.binary_join_element_wise("uid:", t["user_id"], ""),
                             pc.binary_join_element_wise("evt:", t["event_id"], ""))
        cid = pa.array(map_distinct(source, client_id), pa.string())
        sid = pa.array(map_distinct(t["session_id"], session_number), pa.int64())
        params = J.obj(J.inner_members(t["properties_json"]),
                       J.member("session_id", J.number(sid)),
                       J.member("engagement_time_msec",
                                pa.array(np.full(t.num_rows, str(self.engagement_ms)), pa.string())))
        items = J.obj(J.member("name", J.quote(t["event_name"])), J.member("params", params),
                      J.member("timestamp_micros", J.number(pa.array(ts))))

        upa = pa.array(up_json, pa.string())
        codes = factorize_rows(pa.array(route.astype(np.int64)), cid, t["user_id"], t["consent"],
                               t["client_ip"], t["user_agent"], upa)
        order = np.lexsort((ts, codes))
        codes = codes[order]
        # Renumber groups in their sorted order so each group's units are contiguous.
        bounds = np.concatenate([[True], codes[1:] != codes[:-1]])
        groups = np.cumsum(bounds) - 1
        firsts = order[np.flatnonzero(bounds)]
        envelopes, overhead = [], []
        cols = {k: t[k].to_numpy(zero_copy_only=False) for k in ("user_id", "consent", "client_ip", "user_agent")}
        cids = cid.to_numpy(zero_copy_only=False)
        for i in firsts.tolist():
            prefix = self._prefix(cids[i], cols["user_id"][i], cols["consent"][i],
                                  cols["client_ip"][i], cols["user_agent"][i], up_json[i])
            envelopes.append((int(route[i]), prefix))
            overhead.append(len(prefix.encode()) + 2)
        return Prepared(event_ids=t["event_id"].take(pa.array(order)).to_pylist(),
                        items=items.take(pa.array(order)), counts=np.ones(len(order), np.int64),
                        groups=groups, envelopes=envelopes, overhead=overhead,
                        refused_ids=refused_ids, refused_reasons=refused_reasons)

    def _check_params(self, t: pa.Table, why: Reasons) -> None:
        props = t["properties"].combine_chunks() if isinstance(t["properties"], pa.ChunkedArray) else t["properties"]
        n = len(props)
        offsets = props.offsets.to_numpy()
        counts = np.diff(offsets)
        extra = 1 + pc.is_valid(t["session_id"]).to_numpy(zero_copy_only=False).astype(np.int64)
        why.add(counts + extra > MAX_PARAMS_PER_EVENT,
                f"more than {MAX_PARAMS_PER_EVENT} params (session_id and engagement_time_msec included)")
        if not counts.sum():
            return
        keys = props.keys.slice(offsets[0], offsets[-1] - offsets[0])
        values = props.items.slice(offsets[0], offsets[-1] - offsets[0])
        parent = np.repeat(np.arange(n), counts)
        key_reason = map_distinct(keys, lambda k: check_name(k, "param"))
        long_reason = map_distinct(keys, lambda k: f"param {k!r}: value longer than {MAX_PARAM_VALUE_CHARS} characters")
        too_long = pc.fill_null(pc.greater(pc.utf8_length(values), MAX_PARAM_VALUE_CHARS), False)
        for bad, reason in ((key_reason != None, key_reason),  # noqa: E711
                            (too_long.to_numpy(zero_copy_only=False), long_reason)):
            if bad.any():
                rows, first = np.unique(parent[bad], return_index=True)
                per_row = np.full(n, None, dtype=object)
                per_row[rows] = reason[bad][first]
                why.add(per_row != None, per_row)  # noqa: E711

    @staticmethod
    def _prefix(cid: str, user_id: str | None, consent: str | None, ip: str | None,
                ua: str | None, up: str | None) -> str:
        head: dict[str, Any] = {"client_id": cid}
        if user_id:
            head["user_id"] = user_id
        if consent == "denied":
            head["consent"] = {"ad_user_data": "DENIED", "ad_personalization": "DENIED"}
        if ip:
            head["ip_override"] = ip
        if ua:
            head["user_agent"] = ua
        text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
        if up:
            text += ',"user_properties":' + up
        return text + ',"events":['

    def build_request(self, envelope: Any, items: list[str], validate: bool = False) -> Request:
        """POST /mp/collect (or /debug/mp/collect) with measurement_id and api_secret in the query."""
        route, prefix = envelope
        creds = self.routes.table[route]
        query = urllib.parse.urlencode({"measurement_id": creds["measurement_id"],
                                        "api_secret": creds["api_secret"]})
        url = join_endpoint(self.base, DEBUG_PATH if validate else COLLECT_PATH) + "?" + query
        return Request(url=url, headers={}, body=(prefix + ",".join(items) + "]}").encode())

    def read_response(self, status: int, body: bytes, n_items: int, validate: bool) -> Verdict:
        """`/debug/mp/collect` returns validationMessages; map "index: [N]" to the event."""
        if not validate:
            return Verdict()
        try:
            messages = json.loads(body or b"{}").get("validationMessages") or []
        except (ValueError, AttributeError):
            return Verdict(messages=[(None, f"unreadable validation answer: {body[:200]!r}")])
        v = Verdict()
        for m in messages:
            text = f"{m.get('validationCode', '?')} at {m.get('fieldPath', '?')}: {m.get('description', '')}"
            hit = _INDEX_RE.search(str(m.get("description", "")))
            idx = int(hit.group(1)) if hit and int(hit.group(1)) < n_items else None
            v.messages.append((idx, text))
            if idx is not None:
                v.rejected.setdefault(idx, "validation: " + text)
        return v
