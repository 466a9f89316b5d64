"""Segment HTTP Tracking API (`/v1/batch`): `track` calls, plus `identify` for user properties.

Segment deduplicates by `messageId` (= logtrack's deterministic `event_id`), so resending the
batches in flight at a crash is harmless: effectively exactly once (DESIGN §6). Segment takes
historical timestamps, so there is no age window here. Events over the per-call limit are refused
before sending (Segment would answer 400 for the whole batch).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import jsonarrow as J
from .. import schema
from .base import (
    Destination,
    Prepared,
    Request,
    basic_auth,
    env_or,
    join_endpoint,
    load_routes,
    map_distinct,
    route_rows,
)
from .summary import SendOptions

DEFAULT_ENDPOINT = "https://api.segment.io"
BATCH_PATH = "/v1/batch"
# Source: segment.com/docs/connections/sources/catalog/libraries/server/http-api ("Max request
# size" / "Errors"): the batch endpoint accepts at most 500 KB per request, 2,500 events per
# batch, and 32 KB per event. Bytes are counted as 1,000 here, to stay under either reading.
MAX_BATCH_BYTES = 500_000
MAX_BATCH_EVENTS = 2_500
MAX_EVENT_BYTES = 32_000
LIBRARY = '{"name":"logtrack","version":"0.1.0"}'


def _const(text: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(text, pa.string()), n)


def identify_call(user_id: str | None, anonymous_id: str | None, traits_json: str, ts_iso: str) -> str:
    """One identify call; its messageId is a hash of its content, so a resend deduplicates."""
    digest = hashlib.blake2b(json.dumps([user_id, anonymous_id, traits_json]).encode(),
                             digest_size=16, person=b"logtrack-segid").hexdigest()
    head: dict[str, Any] = {"type": "identify", "messageId": f"identify-{digest}"}
    if user_id:
        head["userId"] = user_id
    if anonymous_id:
        head["anonymousId"] = anonymous_id
    head["timestamp"] = ts_iso
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
    return text + ',"traits":' + traits_json + ',"context":{"library":' + LIBRARY + "}}"


class Segment(Destination):
    """The Segment HTTP Tracking API destination."""

    name = "segment"
    dedups = True
    max_batch_events = MAX_BATCH_EVENTS
    max_batch_bytes = MAX_BATCH_BYTES
    gzip = True  # the tracking API accepts Content-Encoding: gzip (its own libraries send it)

    def __init__(self, options: SendOptions) -> None:
        section = options.config.section("destinations").get("segment") or {}
        self.routes = load_routes("segment", options.config, env_or(options.env),
                                  {"write_key": "LOGTRACK_SEGMENT_WRITE_KEY"}, ("write_key",),
                                  allow_missing=options.dry_run, extra_keys=("endpoint",))
        self.base = options.endpoint or section.get("endpoint") or DEFAULT_ENDPOINT

    def secrets(self) -> list[str]:
        """Write keys of every route, raw and as the Basic auth credential."""
        keys = self.routes.secrets(("write_key",))
        return keys + [basic_auth(k).split(" ", 1)[1] for k in keys]

    def prepare(self, events: pa.Table, now_us: int) -> Prepared:
        """Encode track calls (vectorized), attach identify calls, refuse oversized events."""
        t = schema.conform(events, schema.EVENTS).combine_chunks()
        n = t.num_rows
        route, why = route_rows(t, self.routes, "Segment write key", "segment")
        iso = pc.binary_join_element_wise(pc.strftime(t["ts"], format="%Y-%m-%dT%H:%M:%S"), "Z", "")
        # Segment needs userId or anonymousId; with consent denied (no ids) the event's own id
        # stands in, so it counts once and identifies nobody.
        no_ids = pc.and_(pc.is_null(t["user_id"]), pc.is_null(t["anonymous_id"]))
        anon = pc.if_else(no_ids, t["event_id"], t["anonymous_id"])
        query = pc.binary_join_element_wise("?", t["query"], "")
        page = J.obj_or_null(J.member("path", J.quote(t["path"])), J.member("referrer", J.quote(t["referer"])),
                             J.member("search", J.quote(query)))
        campaign = J.obj_or_null(*(J.member(k, J.quote(t[c])) for k, c in (
            ("source", "utm_source"), ("medium", "utm_medium"), ("name", "utm_campaign"),
            ("term", "utm_term"), ("content", "utm_content"))))
        context = J.obj(J.member("ip", J.quote(t["client_ip"])), J.member("userAgent", J.quote(t["user_agent"])),
                        J.member("page", page), J.member("campaign", campaign),
                        J.member("library", _const(LIBRARY, n)))
        props = pc.fill_null(t["properties_json"], "{}")
        track = J.obj(J.member("type", _const('"track"', n)), J.member("messageId", J.quote(t["event_id"])),
                      J.member("event", J.quote(t["event_name"])), J.member("userId", J.quote(t["user_id"])),
                      J.member("anonymousId", J.quote(anon)), J.member("timestamp", J.quote(iso)),
                      J.member("properties", props), J.member("context", context))
        size = J.nbytes(track)
        why.add(size > MAX_EVENT_BYTES, map_distinct(
            pa.array(size // 1000), lambda k: f"event larger than {MAX_EVENT_BYTES // 1000} KB (~{k} KB): Segment drops it"))

        ok = why.ok()
        bad = np.flatnonzero(~ok)
        ids = t["event_id"].to_numpy(zero_copy_only=False)
        refused_ids, refused_reasons = ids[bad].tolist(), why.values[bad].tolist()
        keep = pa.array(ok)
        t, track, iso, route = t.filter(keep), track.filter(keep), iso.filter(keep), route[ok]
        m = t.num_rows
        if not m:
            return Prepared([], pa.array([], pa.string()), np.zeros(0, np.int64), np.zeros(0, np.int64),
                            [], [], refused_ids, refused_reasons)
        route = route.astype(np.int64)
        items, counts = self._with_identify(t, track, iso, route)
        order = np.argsort(route, kind="stable")
        groups_sorted = route[order]
        distinct = np.unique(groups_sorted)
        remap = np.searchsorted(distinct, groups_sorted)
        envelopes = [int(r) for r in distinct]
        return Prepared(event_ids=t["event_id"].take(pa.array(order)).to_pylist(),
                        items=items.take(pa.array(order)), counts=counts[order], groups=remap,
                        envelopes=envelopes, overhead=[len('{"batch":[]}')] * len(envelopes),
                        refused_ids=refused_ids, refused_reasons=refused_reasons)

    def _with_identify(self, t: pa.Table, track: pa.Array, iso: pa.Array,
                       route: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """Put an identify call before the first track of each distinct (ids, traits) in the chunk,
        in the same unit: both are acknowledged together, so neither is lost alone."""
        m = t.num_rows
        upj = t["user_properties_json"]
        has = pc.and_(pc.is_valid(upj), pc.not_equal(pc.utf8_trim_whitespace(pc.fill_null(upj, "")), "{}"))
        has = pc.and_(has, pc.not_equal(pc.fill_null(upj, ""), "")).to_numpy(zero_copy_only=False)
        counts = np.ones(m, np.int64)
        if not has.any():
            return track, counts
        keys = pa.table({"r": pa.array(route), "u": t["user_id"], "a": t["anonymous_id"], "p": upj,
                         "i": pa.array(np.arange(m))}).filter(pa.array(has))
        firsts = keys.group_by(["r", "u", "a", "p"], use_threads=False).aggregate([("i", "min")])
        rows = firsts["i_min"].to_numpy()
        calls = np.full(m, None, dtype=object)
        uid = t["user_id"].to_numpy(zero_copy_only=False)
        aid = t["anonymous_id"].to_numpy(zero_copy_only=False)
        p = upj.to_numpy(zero_copy_only=False)
        ts = iso.to_numpy(zero_copy_only=False)
        for i in rows.tolist():  # one per distinct identity and traits
            calls[i] = identify_call(uid[i], aid[i], p[i], ts[i])
        counts[rows] = 2
        items = J.join_present(pa.array(calls, pa.string()), track)
        return items, counts

    def build_request(self, envelope: Any, items: list[str], validate: bool = False) -> Request:
        """POST /v1/batch with Basic auth (write key as user, empty password)."""
        creds = self.routes.table[envelope]
        body = ('{"batch":[' + ",".join(items) + "]}").encode()
        return Request(url=join_endpoint(self.base, BATCH_PATH),
                       headers={"Authorization": basic_auth(creds["write_key"])}, body=body)
