"""What every destination provides to the delivery engine, plus credentials, routing and redaction.

A destination turns an EVENTS table into *units* (the JSON of one event, sometimes with a call
that must travel with it), grouped by request envelope (GA4: one user per request; Segment: one
write key per request), and knows how to wrap units into an HTTP request and read the answer.
The engine (`engine.py`) does batching, concurrency, retries and the ledger for all of them.
"""

from __future__ import annotations

import base64
import logging
import os
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import Config
from ..errors import ConfigError

REDACTED = "***"


@dataclass
class Prepared:
    """One chunk of events made ready to send.

    `event_ids`, `items`, `counts` and `groups` are aligned, one entry per unit, and units of a
    group are contiguous. `counts` is the number of API calls in a unit (a Segment identify
    travelling with its track counts 2). `envelopes[g]` is what `build_request` needs for group g;
    `overhead[g]` its bytes around the items. Refused events never reach the network.
    """

    event_ids: list[str]
    items: pa.Array
    counts: np.ndarray
    groups: np.ndarray
    envelopes: list[Any]
    overhead: list[int]
    refused_ids: list[str] = field(default_factory=list)
    refused_reasons: list[str] = field(default_factory=list)


@dataclass
class Request:
    """One HTTP request as the engine sends it."""

    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Verdict:
    """What a 2xx response said: per-unit rejections (index into the batch -> reason) and
    messages to show, each with the index of its unit when known."""

    rejected: dict[int, str] = field(default_factory=dict)
    messages: list[tuple[int | None, str]] = field(default_factory=list)


class Destination:
    """Base class of a destination; subclasses set the class attributes and the three methods."""

    name: ClassVar[str]
    dedups: ClassVar[bool]  # the API drops a resent event by its id (exactly-once on resend)
    max_batch_events: ClassVar[int]
    max_batch_bytes: ClassVar[int]
    gzip: ClassVar[bool]
    has_validation: ClassVar[bool] = False

    def secrets(self) -> list[str]:
        """Every secret string (and encoded form) that must never be printed."""
        raise NotImplementedError

    def prepare(self, events: pa.Table, now_us: int) -> Prepared:
        """Validate, refuse and encode one chunk of EVENTS rows (vectorized)."""
        raise NotImplementedError

    def build_request(self, envelope: Any, items: list[str], validate: bool = False) -> Request:
        """The HTTP request carrying `items` (JSON units) of one envelope."""
        raise NotImplementedError

    def read_response(self, status: int, body: bytes, n_items: int, validate: bool) -> Verdict:
        """Interpret a 2xx answer (per-unit rejections, validation messages)."""
        return Verdict()


class Redactor:
    """Replaces every known secret in text; also a logging filter for httpx/httpcore."""

    def __init__(self, secrets: list[str]) -> None:
        forms: set[str] = set()
        for s in secrets:
            if s and len(s) >= 3:
                forms.update({s, urllib.parse.quote(s, safe=""), urllib.parse.quote_plus(s)})
        # Longest first so a secret containing another is replaced whole.
        self.forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """`text` with each secret replaced by ***."""
        for s in self.forms:
            if s in text:
                text = text.replace(s, REDACTED)
        return text

    @contextmanager
    def on_loggers(self, *names: str) -> Iterator[None]:
        """Redact records of the named loggers (httpx logs full URLs, api_secret included)."""
        flt = _RedactFilter(self)
        loggers = [logging.getLogger(n) for n in names]
        for lg in loggers:
            lg.addFilter(flt)
        try:
            yield
        finally:
            for lg in loggers:
                lg.removeFilter(flt)


class _RedactFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor(record.getMessage())
        record.args = None
        return True


def basic_auth(user: str) -> str:
    """`Basic base64(user:)` as Segment expects for a write key."""
    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


@dataclass
class Routes:
    """Credentials per host: `default` (env or config) plus config `hosts:` overrides."""

    default: dict[str, str] | None
    hosts: dict[str, dict[str, str]]
    table: list[dict[str, str]] = field(default_factory=list)

    def index_for(self, hosts: list[str | None]) -> list[int | None]:
        """Route index for each distinct host (exact match, then `*.suffix`, then default)."""
        keys: list[dict[str, str] | None] = []
        for h in hosts:
            creds = self.hosts.get(h or "")
            if creds is None and h:
                for pattern, c in self.hosts.items():
                    if pattern.startswith("*.") and h.endswith(pattern[1:]):
                        creds = c
                        break
            keys.append(creds if creds is not None else self.default)
        out: list[int | None] = []
        for creds in keys:
            if creds is None:
                out.append(None)
                continue
            if creds not in self.table:
                self.table.append(creds)
            out.append(self.table.index(creds))
        return out

    def secrets(self, fields: tuple[str, ...]) -> list[str]:
        """Every credential value of `fields` across routes."""
        all_creds = [self.default or {}, *self.hosts.values()]
        return [c[f] for c in all_creds for f in fields if c.get(f)]


def load_routes(name: str, config: Config, env: Mapping[str, str], env_names: dict[str, str],
                required: tuple[str, ...], allow_missing: bool = False,
                extra_keys: tuple[str, ...] = ()) -> Routes:
    """Read credentials: env vars first, else `destinations.<name>` (`key`, or `key_env` naming
    an env var), and `destinations.<name>.hosts.<host>` routes. Flags never carry secrets."""
    section = config.section("destinations").get(name) or {}
    if not isinstance(section, dict):
        raise config.error(("destinations", name), "must be a mapping")

    def read(mapping: dict[str, Any], use_env: bool) -> dict[str, str]:
        out: dict[str, str] = {}
        for key in env_names:
            value = env.get(env_names[key]) if use_env else None
            if not value and mapping.get(key) is not None:
                value = str(mapping[key])
            if not value and mapping.get(key + "_env"):
                value = env.get(str(mapping[key + "_env"]))
            if value:
                out[key] = value
        return out

    known = {*env_names, *(k + "_env" for k in env_names), "hosts", *extra_keys}
    for key in section:
        if key not in known:
            raise config.error(("destinations", name, key), f"unknown key {key!r} (known: {', '.join(sorted(known))})")
    default = read(section, True)
    hosts_cfg = section.get("hosts") or {}
    if not isinstance(hosts_cfg, dict):
        raise config.error(("destinations", name, "hosts"), "must be a mapping of host to credentials")
    hosts: dict[str, dict[str, str]] = {}
    for host, creds in hosts_cfg.items():
        if not isinstance(creds, dict):
            raise config.error(("destinations", name, "hosts", host), "must be a mapping")
        merged = {**default, **read(creds, False)}
        missing = [k for k in required if not merged.get(k)]
        if missing:
            raise config.error(("destinations", name, "hosts", host), f"missing {', '.join(missing)}")
        hosts[str(host)] = merged
    if not all(default.get(k) for k in required):
        if allow_missing:
            # --dry-run without credentials: show payloads with placeholders.
            default = {k: default.get(k) or "<unset>" for k in env_names}
        elif hosts:
            return Routes(default=None, hosts=hosts)
        else:
            envs = " and ".join(env_names[k] for k in required)
            raise ConfigError(f"{name}: no credentials: set {envs} (or destinations.{name} in the "
                              "config file)")
    return Routes(default=default, hosts=hosts)


def env_or(env: Mapping[str, str] | None) -> Mapping[str, str]:
    """The environment to read secrets from (tests pass their own)."""
    return os.environ if env is None else env


def join_endpoint(base: str, path: str) -> str:
    """`--endpoint` replaces scheme, host and any path prefix; the API's own path is appended."""
    return base.rstrip("/") + path


def map_distinct(values: pa.Array | pa.ChunkedArray, fn: Any) -> np.ndarray:
    """`fn` applied once per distinct value (None for nulls), spread back to rows (object array)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    enc = pc.dictionary_encode(arr)
    distinct = [fn(v) for v in enc.dictionary.to_pylist()]
    table = np.empty(len(distinct) + 1, dtype=object)
    for i, v in enumerate(distinct):  # one by one: tuples must stay elements, not become rows
        table[i] = v
    table[len(distinct)] = fn(None)
    idx = pc.fill_null(enc.indices, len(distinct)).to_numpy(zero_copy_only=False)
    return table[idx]


class Reasons:
    """The first refusal reason of each row (None = fine), filled mask by mask."""

    def __init__(self, n: int) -> None:
        self.values = np.full(n, None, dtype=object)

    def add(self, mask: np.ndarray, reason: Any) -> None:
        """Set `reason` (a string or an object array aligned with rows) where `mask` and unset."""
        where = np.asarray(mask, dtype=bool) & (self.values == None)  # noqa: E711 (elementwise)
        if isinstance(reason, np.ndarray):
            self.values[where] = reason[where]
        else:
            self.values[where] = reason

    def ok(self) -> np.ndarray:
        """Rows without a reason."""
        return self.values == None  # noqa: E711 (elementwise)


def route_rows(t: pa.Table, routes: Any, what: str, section: str) -> tuple[np.ndarray, Reasons]:
    """Each event's credentials route by its host, and a Reasons with the unroutable refused
    (`no <what> for host 'x' (destinations.<section>.hosts)`)."""
    why = Reasons(t.num_rows)
    route = map_distinct(t["host"], lambda h: routes.index_for([h])[0])
    why.add(route == None,  # noqa: E711 (elementwise)
            map_distinct(t["host"], lambda h: f"no {what} for host {h!r} (destinations.{section}.hosts)"))
    return route, why


def factorize_rows(*columns: pa.Array) -> np.ndarray:
    """Group code per row over several string columns (nulls are a value of their own)."""
    parts = [pc.fill_null(c.cast(pa.string()), "\x00") for c in columns]
    key = pc.binary_join_element_wise(*parts, "\x1f")
    codes, _ = pd.factorize(key.to_numpy(zero_copy_only=False))
    return codes.astype(np.int64)
