"""JSON-lines formats: the one alias table of keys per column, and `JsonFormat` (DESIGN §3).

A `Mapping` says, per REQUESTS column, which keys to take, in order of preference, and how to
convert each (`kind`). Keys are dotted paths into nested objects (`httpRequest.status`).
Kinds are those of `columns.convert_one` (`ip`, `host`, `status`, `int`, `str`, `time_clf`,
`epoch_ms`, `dur_s`, …) plus:
- `time_iso`, `time_any` (epoch number of any unit, ISO 8601 or CLF text);
- `request` (`GET /a?b HTTP/1.1`), `target` (`/a?b` or `http://h/a?b`) and `route` (API Gateway
  `GET /pets`): the key is split once and each column takes its part;
- `present:VALUE`: VALUE wherever the key is present (Caddy logs `request.tls` only for TLS).
Header objects become `http_<name>` (request) / `sent_http_<name>` (response) fields, and
unmapped top-level scalar keys go into `fields` under their own names (when `extras` is set).

The alias table is one set of sections, one per source of key names: nginx variables, names
common in hand-written layouts, Matomo's documented keys, and each product's own. A key means the
same thing in every section (`ALIASES`, their union, is checked for that). The generic
`nginx_json` format uses the hand-written-layout sections (`GENERIC`), so a user's own
`escape=json` layout works without configuration; each product preset uses its own section, so
a product's lines are recognised by its own keys and `nginx_json` rejects them (no timestamp or
request key of its own), which keeps auto-detection unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..lines import Lines
from . import convert as cv
from . import jsonread as jr
from .base import LogFormat, Parsed, assemble, rejects_table
from .columns import convert_one

Keys = tuple[tuple[str, str], ...]
SPLITS = {"request": ("method", "scheme", "host", "path", "query", "protocol"),
          "route": ("method", "path", "query"),
          "target": ("scheme", "host", "path", "query")}


@dataclass(frozen=True)
class Mapping:
    """Which JSON keys feed which column (see the module docstring)."""

    columns: dict[str, Keys]
    fields: dict[str, str] = field(default_factory=dict)  # field name -> key
    headers: tuple[tuple[str, str], ...] = ()  # (regex whose group 1 is a header name, field prefix)
    drop: frozenset[str] = frozenset()  # top-level keys never copied into fields
    extras: bool = True  # unmapped top-level scalar keys go into fields under their names

    def keys(self) -> set[str]:
        """Every key path the mapping names."""
        return {k for keys in self.columns.values() for k, _ in keys} | set(self.fields.values())

    def validate(self) -> None:
        """Raise ValueError for a split kind on a column the split does not give."""
        for col, keys in self.columns.items():
            for key, kind in keys:
                if kind in SPLITS and col not in SPLITS[kind]:
                    raise ValueError(f"{key!r}: a {kind} split gives no {col!r}")


def merge(*maps: Mapping) -> Mapping:
    """The union of mappings: per column, keys in order, the first kind named for a key wins."""
    columns: dict[str, list[tuple[str, str]]] = {}
    fields: dict[str, str] = {}
    for m in maps:
        for col, keys in m.columns.items():
            have = columns.setdefault(col, [])
            have.extend(kk for kk in keys if kk[0] not in {k for k, _ in have})
        for name, key in m.fields.items():
            fields.setdefault(name, key)
    headers = tuple(dict.fromkeys(h for m in maps for h in m.headers))
    return Mapping({c: tuple(k) for c, k in columns.items()}, fields, headers,
                   frozenset().union(*(m.drop for m in maps)), any(m.extras for m in maps))


def _same(keys: Keys, *cols: str) -> dict[str, Keys]:
    return dict.fromkeys(cols, keys)


# --- the alias table ------------------------------------------------------------------------

# nginx variable names, as a `log_format … escape=json` layout names them.
NGINX = Mapping({
    "ts": (("time_iso8601", "time_iso"), ("msec", "epoch_s"), ("time_local", "time_clf")),
    "client_ip": (("remote_addr", "ip"), ("realip_remote_addr", "ip")),
    "method": (("request_method", "str"), ("request", "request")),
    "scheme": (("scheme", "str"), ("request_uri", "target"), ("request", "request")),
    "host": (("http_host", "host"), ("host", "host"), ("server_name", "host"), ("request_uri", "target"),
             ("request", "request")),
    # The request line and $request_uri are the raw target; $uri is decoded and rewritten.
    "path": (("request", "request"), ("request_uri", "target"), ("uri", "str"), ("document_uri", "str")),
    "query": (("request", "request"), ("request_uri", "target"), ("args", "query"), ("query_string", "query")),
    "protocol": (("server_protocol", "str"), ("request", "request")),
    "status": (("status", "status"),),
    "bytes_sent": (("body_bytes_sent", "int"), ("bytes_sent", "int")),
    "referer": (("http_referer", "str"), ("http_referrer", "str")),
    "user_agent": (("http_user_agent", "str"),),
    "request_time_ms": (("request_time", "dur_s"),),
    "upstream_time_ms": (("upstream_response_time", "dur_s"),),
    "remote_user": (("remote_user", "str"),),
    "request_id": (("request_id", "str"), ("req_id", "str")),
})
# Names people give values in hand-written layouts (`"time": "$time_iso8601"`, `"vhost": "$host"`).
COMMON = Mapping({
    "ts": (("time", "time_any"), ("timestamp", "time_any"), ("@timestamp", "time_any")),
    "client_ip": (("client_ip", "ip"), ("remote_ip", "ip")),
    "method": (("method", "str"),),
    "host": (("vhost", "host"),),
    "path": (("url", "target"),),
    "query": (("url", "target"), ("request_query", "query")),
    "protocol": (("request_proto", "str"),),
    "referer": (("referer", "str"),),
})
# The keys Matomo's log importer documents for its JSON format (`path` holds the query too).
MATOMO = Mapping({
    "ts": (("date", "time_any"),),
    "client_ip": (("ip", "ip"),),
    "host": (("host", "host"),),
    **_same((("path", "target"),), "path", "query"),
    "status": (("status", "status"),),
    "referer": (("referrer", "str"),),
    "user_agent": (("user_agent", "str"),),
    "bytes_sent": (("length", "int"),),
    "request_time_ms": (("generation_time_milli", "dur_ms"),),
})
_NOISE = frozenset({"level", "logger", "msg", "severity"})
CADDY = Mapping({
    "ts": (("ts", "time_any"),),
    "client_ip": (("request.client_ip", "ip"), ("request.remote_ip", "ip")),
    "method": (("request.method", "str"),),
    "scheme": (("request.tls.version", "present:https"), ("request.proto", "present:http")),
    "host": (("request.host", "host"),),
    **_same((("request.uri", "target"),), "path", "query"),
    "protocol": (("request.proto", "str"),),
    "status": (("status", "status"),),
    "bytes_sent": (("size", "int"),),
    "referer": (("request.headers.Referer", "str"),),
    "user_agent": (("request.headers.User-Agent", "str"),),
    "request_time_ms": (("duration", "dur_s"),),
    "remote_user": (("user_id", "str"),),
}, headers=((r"^request\.headers\.(.+)$", "http_"), (r"^resp_headers\.(.+)$", "sent_http_")), drop=_NOISE)
# Traefik v1 and v2 (`Duration`/`OriginDuration` are nanoseconds; headers are `request_<Name>`).
TRAEFIK = Mapping({
    "ts": (("StartUTC", "time_iso"), ("StartLocal", "time_iso"), ("time", "time_any")),
    "client_ip": (("ClientHost", "ip"), ("ClientAddr", "ip")),
    "method": (("RequestMethod", "str"), ("RequestLine", "request")),
    "scheme": (("RequestScheme", "str"),),
    "host": (("RequestHost", "host"), ("RequestAddr", "host")),
    **_same((("RequestPath", "target"), ("RequestLine", "request")), "path", "query"),
    "protocol": (("RequestProtocol", "str"), ("RequestLine", "request")),
    "status": (("DownstreamStatus", "status"),),
    "bytes_sent": (("DownstreamContentSize", "int"),),
    "referer": (("request_Referer", "str"),),
    "user_agent": (("request_User-Agent", "str"),),
    "request_time_ms": (("Duration", "dur_ns"),),
    "upstream_time_ms": (("OriginDuration", "dur_ns"),),
    "remote_user": (("ClientUsername", "str"),),
}, headers=((r"^request_([A-Z][A-Za-z0-9-]*)$", "http_"), (r"^downstream_([A-Z][A-Za-z0-9-]*)$", "sent_http_"),
            (r"^origin_([A-Z][A-Za-z0-9-]*)$", "upstream_http_")),
    drop=_NOISE | {"ClientPort", "RequestPort", "DownstreamStatusLine", "OriginStatusLine"})
KONG = Mapping({
    "ts": (("started_at", "epoch_ms"),),
    "client_ip": (("client_ip", "ip"),),
    "method": (("request.method", "str"),),
    "scheme": (("request.url", "target"),),
    "host": (("request.headers.host", "host"), ("request.url", "target")),
    **_same((("request.uri", "target"), ("request.url", "target")), "path", "query"),
    "status": (("response.status", "status"),),
    "bytes_sent": (("response.size", "int"),),
    "referer": (("request.headers.referer", "str"),),
    "user_agent": (("request.headers.user-agent", "str"),),
    "request_time_ms": (("latencies.request", "dur_ms"),),
    "upstream_time_ms": (("latencies.proxy", "dur_ms"),),
    "remote_user": (("consumer.username", "str"),),
    "request_id": (("request.id", "str"),),
}, fields={"request_length": "request.size", "service_name": "service.name", "route_name": "route.name",
           "latencies_kong": "latencies.kong"},
    headers=((r"^request\.headers\.(.+)$", "http_"), (r"^response\.headers\.(.+)$", "sent_http_")))
# API Gateway access logs: REST and HTTP API `$context` variables under the keys AWS documents.
APIGATEWAY = Mapping({
    "ts": (("requestTimeEpoch", "time_any"), ("requestTime", "time_clf")),
    "client_ip": (("ip", "ip"), ("sourceIp", "ip")),
    "method": (("httpMethod", "str"), ("routeKey", "route")),
    "host": (("domainName", "host"),),
    # `path` is the real path; `resourcePath` / `routeKey` only the template (`/pets/{petId}`).
    "path": (("path", "target"), ("resourcePath", "str"), ("routeKey", "route")),
    "query": (("path", "target"),),
    "protocol": (("protocol", "str"),),
    "status": (("status", "status"),),
    "bytes_sent": (("responseLength", "int"),),
    "user_agent": (("userAgent", "str"),),
    "request_time_ms": (("responseLatency", "dur_ms"),),
    "upstream_time_ms": (("integrationLatency", "dur_ms"),),
    "request_id": (("requestId", "str"),),
}, fields={"resource_path": "resourcePath", "route_key": "routeKey", "api_id": "apiId",
           "extended_request_id": "extendedRequestId"})
# Cloud Logging `httpRequest` (HTTP(S) load balancer, Cloud Run, App Engine).
GCP = Mapping({
    "ts": (("timestamp", "time_any"),),
    "client_ip": (("httpRequest.remoteIp", "ip"),),
    "method": (("httpRequest.requestMethod", "str"),),
    **_same((("httpRequest.requestUrl", "target"),), "scheme", "host", "path", "query"),
    "protocol": (("httpRequest.protocol", "str"),),
    "status": (("httpRequest.status", "status"),),
    "bytes_sent": (("httpRequest.responseSize", "int"),),
    "referer": (("httpRequest.referer", "str"),),
    "user_agent": (("httpRequest.userAgent", "str"),),
    "request_time_ms": (("httpRequest.latency", "dur_s"),),
}, fields={"request_length": "httpRequest.requestSize", "server_addr": "httpRequest.serverIp",
           "cache_hit": "httpRequest.cacheHit", "cache_lookup": "httpRequest.cacheLookup",
           "cache_validated": "httpRequest.cacheValidatedWithOriginServer",
           "status_details": "jsonPayload.statusDetails", "cache_id": "jsonPayload.cacheId",
           "backend_service_name": "resource.labels.backend_service_name", "trace": "trace"},
    extras=False)

GENERIC = merge(NGINX, COMMON, MATOMO)
ALIASES = merge(NGINX, COMMON, MATOMO, CADDY, TRAEFIK, KONG, APIGATEWAY, GCP)


# --- conversion -----------------------------------------------------------------------------

def convert_value(kind: str, arr: pa.Array) -> pa.Array:
    """One JSON column (any JSON type) converted by a non-split kind."""
    if kind == "time_iso":
        return jr.time_iso(arr)
    if kind == "time_any":
        return jr.time_any(arr)
    if pa.types.is_timestamp(arr.type) and kind.startswith(("time_", "epoch_", "strftime:")):
        return arr.cast(cv.TS)
    if kind.startswith("present:"):
        return pc.if_else(pc.is_valid(arr), kind.split(":", 1)[1], pa.scalar(None, pa.string()))
    if kind.startswith("dur_"):
        # Nanoseconds are the finest unit logged; rounding drops float noise (0.001674508 s).
        return pc.divide(pc.round(pc.multiply(convert_one(kind, arr), 1e6)), 1e6)
    if kind in ("int", "status") or kind.startswith("epoch_"):
        return convert_one(kind, arr)  # numbers stay numbers
    return convert_one(kind, jr.as_text(arr))


def convert_flat(mapping: Mapping, flat: dict[str, pa.Array]
                 ) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """REQUESTS columns and `fields` from the flat JSON columns of one block."""
    splits: dict[tuple[str, str], dict[str, pa.Array]] = {}
    columns: dict[str, pa.Array] = {}
    fields: dict[str, pa.Array] = {}
    for col, keys in mapping.columns.items():
        values = []
        for key, kind in keys:
            if key not in flat:
                continue
            if kind in SPLITS:
                if (key, kind) not in splits:
                    raw = jr.as_text(flat[key])
                    splits[key, kind] = cv.split_target(raw) if kind == "target" else cv.split_request(raw)
                values.append(splits[key, kind][col])
            else:
                values.append(convert_value(kind, flat[key]))
        if values:
            columns[col] = pc.coalesce(*values) if len(values) > 1 else values[0]
    raws = [parts["request_raw"] for (_, kind), parts in splits.items() if kind == "request"]
    if raws and pc.any(pc.is_valid(pc.coalesce(*raws))).as_py():
        fields["request"] = pc.coalesce(*raws)
    for name, key in mapping.fields.items():
        if key in flat:
            _add(fields, name, jr.as_text(flat[key]))
    used = mapping.keys()
    headers = [(re.compile(rx), prefix) for rx, prefix in mapping.headers]
    for name, arr in flat.items():
        if name in used:
            continue
        for rx, prefix in headers:
            m = rx.match(name)
            if m:
                _add(fields, prefix + m.group(1).lower().replace("-", "_"), jr.as_text(arr))
                break
        else:
            if mapping.extras and "." not in name and name not in mapping.drop:
                _add(fields, name, jr.as_text(arr))
    return columns, fields


def _add(fields: dict[str, pa.Array], name: str, values: pa.Array) -> None:
    fields[name] = pc.coalesce(fields[name], values) if name in fields else values


# --- the format -----------------------------------------------------------------------------

class JsonFormat(LogFormat):
    """A JSON-lines format: every line one JSON object, mapped to columns by a `Mapping`.

    A line is rejected when it is not JSON (`invalid JSON`), not an object, has none of the
    mapping's keys, no timestamp key, or a timestamp but nothing about a request — so a format
    never accepts another product's lines during auto-detection.
    """

    def __init__(self, name: str, description: str, mapping: Mapping, generic: bool = False) -> None:
        mapping.validate()
        self.name = name
        self.description = description
        self.mapping = mapping
        #: The alias-table format (hand-written layouts) rather than one product's own.
        self.generic = generic
        self._ts_keys = [k for k, _ in mapping.columns.get("ts", ())]
        self._request_keys = sorted({k for c, keys in mapping.columns.items() if c != "ts" for k, _ in keys})

    def parse(self, lines: Lines, state: dict[str, Any]) -> Parsed:
        """Parse one block of JSON lines (see the class docstring for what is rejected)."""
        flat, reasons = jr.read_objects(lines)
        rejects = [rejects_table(lines, pc.is_valid(reasons), reasons)]
        if reasons.null_count < len(lines):
            lines = lines.take(np.flatnonzero(cv.as_mask(pc.is_null(reasons))))
        n = len(lines)
        has_ts = self._present(flat, self._ts_keys, n)
        has_request = self._present(flat, self._request_keys, n)
        has_any = has_ts | has_request | self._present(flat, self._other_keys(flat), n)
        keep = has_ts & has_request
        if not keep.all():
            why = np.where(~has_any, f"JSON object has none of the {self.name} keys",
                           np.where(~has_ts, f"JSON object has no timestamp key ({', '.join(self._ts_keys[:6])})",
                                    "JSON object has a timestamp but no request keys"))
            rejects.append(rejects_table(lines, ~keep, pa.array(why, pa.string())))
            mask = pa.array(keep)
            flat = {k: v.filter(mask) for k, v in flat.items()}
            lines = lines.take(np.flatnonzero(keep))
        columns, fields = convert_flat(self.mapping, flat)
        parsed = assemble(lines, columns, pa.array(np.ones(len(lines), dtype=bool)), fields)
        all_rejects = pa.concat_tables([*rejects, parsed.rejects])
        if all_rejects.num_rows > 1:
            all_rejects = all_rejects.take(pc.sort_indices(all_rejects, [("line", "ascending")]))
        return Parsed(parsed.requests, all_rejects)

    def _other_keys(self, flat: dict[str, pa.Array]) -> list[str]:
        """Keys that are the format's without being a column's: fields and headers."""
        rxs = [re.compile(rx) for rx, _ in self.mapping.headers]
        named = set(self.mapping.fields.values())
        return [k for k in flat if k in named or any(rx.match(k) for rx in rxs)]

    @staticmethod
    def _present(flat: dict[str, pa.Array], keys: list[str], n: int) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        for key in keys:
            if key in flat:
                out |= cv.as_mask(pc.is_valid(flat[key]))
        return out
