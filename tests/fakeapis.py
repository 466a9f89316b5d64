"""Local fake GA4 Measurement Protocol and Segment HTTP Tracking API servers (127.0.0.1 only).

They check requests the way the real APIs document them (paths, auth, required fields, limits,
status codes) and can inject faults *before* processing a request: 500, 429 with Retry-After and
connection resets, at a seeded rate, plus a scripted list of statuses for the next requests.
Protocol violations are collected in `errors` (the real /mp/collect answers 2xx even for bad
payloads, so tests must look there). Usable as pytest fixtures (`ga4_api`, `segment_api`) and
from the command line for benchmarks: `python tests/fakeapis.py segment|ga4 PORT`.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pytest

from logtrack.schema import EVENTS, conform
from logtrack.send import SendOptions

GA4_SECRET, GA4_MID = "ga4-SECRET-do-not-print-7f3a", "G-TEST123"
SEGMENT_KEY = "seg-WRITEKEY-do-not-print-91bd"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
CLIENT_ID = re.compile(r"\d{10}\.\d{10}")
GA4_RESERVED = {"page_view", "session_start", "first_visit", "user_engagement", "click", "scroll"}


class FakeAPI:
    """A threaded HTTP server with fault injection; subclasses implement `handle`."""

    def __init__(self, fail_rate: float = 0.0, seed: int = 1, delay: float = 0.0,
                 faults: tuple[str, ...] = ("500", "429", "reset"), retry_after: str = "0") -> None:
        self.fail_rate, self.delay, self.faults, self.retry_after = fail_rate, delay, faults, retry_after
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.script: list[int] = []  # statuses answered to the next requests, in order
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self.errors: list[str] = []
        self.bodies: list[bytes] = []  # every processed body (to check for secrets)
        self.urls: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the client died mid-request: nothing to process
                    self.close_connection = True
                    return
                status, payload, headers = api._dispatch(self, body)
                if status == 0:  # connection reset: RST without an answer
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                self.send_response(status)
                for k, v in {"Content-Length": str(len(payload)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """Base URL to pass as --endpoint."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _dispatch(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        with self.lock:
            self.requests += 1
            scripted = self.script.pop(0) if self.script else None
            fault = None
            if scripted is None and self.fail_rate and self.rng.random() < self.fail_rate:
                fault = self.rng.choice(self.faults)
            if fault:
                self.injected[fault] += 1
        if self.delay:
            time.sleep(self.delay)
        if scripted is not None:
            return scripted, b'{"error":"scripted"}', {"Retry-After": self.retry_after}
        if fault == "reset":
            return 0, b"", {}
        if fault == "500":
            return 500, b"internal error", {}
        if fault == "429":
            return 429, b"slow down", {"Retry-After": self.retry_after}
        if h.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        url = urllib.parse.urlsplit(h.path)
        with self.lock:
            self.bodies.append(body)
            self.urls.append(h.path)
        return self.handle(url.path, urllib.parse.parse_qs(url.query), h.headers, body)

    def handle(self, path: str, query: dict[str, list[str]], headers: object, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        """Answer one request that got past fault injection."""
        raise NotImplementedError

    def error(self, text: str) -> None:
        """Record a protocol violation."""
        with self.lock:
            self.errors.append(text)


class FakeGA4(FakeAPI):
    """GA4 /mp/collect (always 2xx, like the real one) and /debug/mp/collect (validationMessages)."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.events: list[dict] = []  # accepted events, each with the request's client_id
        self.credentials = {GA4_MID: GA4_SECRET}  # measurement_id -> api_secret accepted

    def handle(self, path, query, headers, body):  # noqa: ANN001, D102
        if path not in ("/mp/collect", "/debug/mp/collect"):
            return 404, b"not found", {}
        if len(body) >= 130_000:
            return 413, b"payload too large", {}
        problems = []
        mid = (query.get("measurement_id") or [""])[0]
        if self.credentials.get(mid) is None or query.get("api_secret") != [self.credentials[mid]]:
            problems.append("bad measurement_id or api_secret")
        if headers.get("Content-Type") != "application/json":
            problems.append("content type")
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
            problems.append("invalid JSON")
        problems += self.check(doc)
        if path == "/debug/mp/collect":
            msgs = [{"fieldPath": "events", "description": p, "validationCode": "VALUE_INVALID"} for p in problems]
            return 200, json.dumps({"validationMessages": msgs}).encode(), {"Content-Type": "application/json"}
        if problems:
            for p in problems:
                self.error(p)
        else:
            with self.lock:
                for ev in doc["events"]:
                    self.events.append({**ev, "measurement_id": mid, **{k: doc.get(k) for k in (
                        "client_id", "user_id", "consent", "user_properties", "ip_override", "user_agent")}})
        return 204, b"", {}

    @staticmethod
    def check(doc: dict) -> list[str]:
        """Problems with one request body, phrased like the validation server."""
        out = []
        if not CLIENT_ID.fullmatch(str(doc.get("client_id", ""))):
            out.append(f"client_id {doc.get('client_id')!r} is not <10 digits>.<10 digits>")
        events = doc.get("events")
        if not isinstance(events, list) or not 1 <= len(events) <= 25:
            return out + ["events must hold 1 to 25 events"]
        oldest = (time.time() - 72 * 3600) * 1e6
        for i, ev in enumerate(events):
            name, params = ev.get("name", ""), ev.get("params", {})
            if not NAME.fullmatch(name) or name in GA4_RESERVED:
                out.append(f"Event at index: [{i}] has invalid name [{name}].")
            if len(params) > 25:
                out.append(f"Event at index: [{i}] has more than 25 params.")
            for k, v in params.items():
                if not NAME.fullmatch(k) or k.startswith(("google_", "ga_", "firebase_")):
                    out.append(f"Event at index: [{i}] has invalid param [{k}].")
                if isinstance(v, str) and len(v) > 100:
                    out.append(f"Event at index: [{i}] has param [{k}] value too long.")
            if "session_id" not in params or "engagement_time_msec" not in params:
                out.append(f"Event at index: [{i}] lacks session_id or engagement_time_msec.")
            ts = ev.get("timestamp_micros")
            if not isinstance(ts, int) or ts < oldest:
                out.append(f"Event at index: [{i}] has timestamp_micros missing or older than 72 h.")
        up = doc.get("user_properties") or {}
        if len(up) > 25 or any(len(k) > 24 or len(str(v.get("value", ""))) > 36 for k, v in up.items()):
            out.append("user_properties out of bounds")
        consent = doc.get("consent") or {}
        if any(v not in ("GRANTED", "DENIED") for v in consent.values()):
            out.append("consent values must be GRANTED or DENIED")
        return out


class FakeSegment(FakeAPI):
    """Segment /v1/batch: Basic auth, 500 KB per batch, 32 KB per call, dedup by messageId."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.messages: dict[str, dict] = {}  # messageId -> call, deduplicated like Segment
        self.deduplicated = 0
        self.write_keys = {SEGMENT_KEY}

    def handle(self, path, query, headers, body):  # noqa: ANN001, D102
        if path != "/v1/batch":
            return 404, b"not found", {}
        auth = headers.get("Authorization") or ""
        key = base64.b64decode(auth[6:]).decode()[:-1] if auth.startswith("Basic ") else ""
        if key not in self.write_keys:
            return 401, b'{"error":"invalid write key"}', {}
        if len(body) > 500_000:
            return 400, b'{"error":"batch larger than 500 KB"}', {}
        try:
            batch = json.loads(body)["batch"]
        except (ValueError, KeyError, TypeError):
            return 400, b'{"error":"invalid JSON"}', {}
        if len(batch) > 2500:
            self.error("more than 2500 calls in a batch (Segment drops the extra ones)")
        for call in batch:
            if len(json.dumps(call)) > 32_768:
                return 400, b'{"error":"call larger than 32 KB"}', {}
        for call in batch:
            problem = self.check(call)
            if problem:
                self.error(problem)
                continue
            with self.lock:
                if call["messageId"] in self.messages:
                    self.deduplicated += 1
                else:
                    self.messages[call["messageId"]] = {**call, "write_key": key}
        return 200, b'{"success":true}', {"Content-Type": "application/json"}

    @staticmethod
    def check(call: dict) -> str | None:
        """Why Segment would not accept this call (None when fine)."""
        if call.get("type") not in ("track", "identify"):
            return f"unknown type {call.get('type')!r}"
        if not call.get("messageId"):
            return "no messageId"
        if not (call.get("userId") or call.get("anonymousId")):
            return "no_user_anon_id"
        if call["type"] == "track" and not call.get("event"):
            return "track without event"
        ts = call.get("timestamp", "")
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", ts):
            return f"bad timestamp {ts!r}"
        return None

    def tracks(self) -> dict[str, dict]:
        """Accepted track calls by messageId."""
        return {k: v for k, v in self.messages.items() if v["type"] == "track"}


def make_events(n: int, users: int = 20, start: datetime | None = None, host: str = "shop.example.com",
                **columns: list) -> pa.Table:
    """n EVENTS rows, one millisecond apart from `start` (default: one hour ago), so each
    event's timestamp identifies it; ids `ev<i>`; `users` anonymous visitors in turn."""
    start = start or datetime.now(UTC) - timedelta(hours=1)
    start_us = int(start.timestamp() * 1_000_000)
    rows = {
        "event_id": [f"ev{i}" for i in range(n)],
        "event_name": ["server_order_placed"] * n,
        "ts": pa.array([start_us + 1000 * i for i in range(n)], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "anonymous_id": [f"anon{i % users}" for i in range(n)],
        "session_id": [f"sess{i % users}" for i in range(n)],
        "properties": pa.array([[("coupon", "X"), ("total_cents", str(i))] for i in range(n)],
                               pa.map_(pa.string(), pa.string())),
        "properties_json": [json.dumps({"coupon": "X", "total_cents": i}) for i in range(n)],
        "host": [host] * n,
        "client_ip": ["192.0.2.0"] * n,
        "user_agent": ["Mozilla/5.0 (X11; Linux x86_64)"] * n,
        "path": ["/api/v1/orders"] * n,
        **columns,
    }
    return conform(pa.table(rows), EVENTS)


ENV = {"LOGTRACK_GA4_MEASUREMENT_ID": GA4_MID, "LOGTRACK_GA4_API_SECRET": GA4_SECRET,
       "LOGTRACK_SEGMENT_WRITE_KEY": SEGMENT_KEY}


def options(api: FakeAPI | None, state: object, **kw: object) -> SendOptions:
    """SendOptions aimed at a fake server, with the test secrets and millisecond backoffs."""
    base = {"endpoint": api.url if api else None, "state": state, "env": dict(ENV),
            "backoff_base": 0.001, "backoff_max": 0.01}
    return SendOptions(**{**base, **kw})  # type: ignore[arg-type]


def ga4_key(ev: dict, start_us: int) -> int:
    """The index of a received GA4 event (make_events spaces timestamps 1 ms apart)."""
    return (ev["timestamp_micros"] - start_us) // 1000


@pytest.fixture
def ga4_api():
    """A running FakeGA4 (adjust fail_rate/script/delay on it before sending)."""
    with FakeGA4() as api:
        yield api


@pytest.fixture
def segment_api():
    """A running FakeSegment."""
    with FakeSegment() as api:
        yield api


def stats(api: FakeAPI) -> dict:
    """Counts for benchmarks: accepted (unique), duplicates, requests, injected faults, errors."""
    if isinstance(api, FakeGA4):
        keys = Counter((e["client_id"], e["name"], e["timestamp_micros"]) for e in api.events)
        accepted, dups = len(keys), sum(keys.values()) - len(keys)
    else:
        accepted, dups = len(api.tracks()), api.deduplicated
    return {"accepted": accepted, "duplicates": dups, "requests": api.requests,
            "injected": dict(api.injected), "errors": api.errors[:5]}


if __name__ == "__main__":  # benchmark helper: `python tests/fakeapis.py ga4|segment [FAIL_RATE]`
    api = (FakeGA4 if sys.argv[1] == "ga4" else FakeSegment)(fail_rate=float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
    api.thread.start()
    print(api.url, flush=True)
    for _line in sys.stdin:  # any line: print stats; EOF: stop
        print(json.dumps(stats(api)), flush=True)
