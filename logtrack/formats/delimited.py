"""Space-separated, quote-aware layouts with a fixed head and an open tail (DESIGN §3, §8).

AWS writes its access logs (ALB, Classic ELB, S3) as words and `"quoted"` values separated by
single spaces, and appends new fields at the end over the years. A `Delimited` layout is the
documented field list, e.g. `time elb client "request" "user_agent" ssl_cipher`, with `[name]`
for a bracketed value holding one space (S3's `[10/Feb/2012:16:42:07 -0500]`); fields after
`required` may be missing and any number of later fields is accepted.

The fast plan splits each line on `"` once and the unquoted stretches on single spaces (no
regex per line); lines it cannot take (escaped quotes, odd spacing, older shorter layouts, `-`
in place of a quoted value) go to one full RE2 regex.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..lines import Lines
from ..schema import REJECTS, REQUESTS, TS, empty
from . import convert as cv
from .base import LogFormat, Parsed, assemble
from .columns import convert_vars
from .variables import Var

_QUOTED = r'"(?:[^"\\]|\\.)*"|-'  # AWS writes `-` unquoted for some values (S3 lifecycle lines)
_ISO_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$"


@dataclass(frozen=True)
class Item:
    """One field of a layout."""

    name: str
    quoted: bool = False
    bracket: bool = False


class Delimited:
    """A compiled layout: `split(text)` returns raw strings per field name and a matched mask."""

    def __init__(self, spec: str, required: str) -> None:
        self.items = [_item(tok) for tok in spec.split()]
        self.names = [it.name for it in self.items]
        self.n_required = self.names.index(required) + 1
        # Unquoted stretches between quoted values: segment i precedes quoted value i.
        self.segments: list[list[Item]] = [[]]
        self.quoted: list[Item] = []
        for it in self.items:
            if it.quoted:
                self.quoted.append(it)
                self.segments.append([])
            else:
                self.segments[-1].append(it)
        self.regex = self._regex()

    def _regex(self) -> str:
        parts = []
        for i, it in enumerate(self.items):
            pat = rf"\[(?P<f{i}>[^\]]*)\]" if it.bracket else (rf"(?P<f{i}>{_QUOTED})" if it.quoted else rf"(?P<f{i}>\S+)")
            parts.append(("(?:" if i >= self.n_required else "") + ("" if i == 0 else " +") + pat)
        closing = ")?" * (len(self.items) - self.n_required)
        return "^" + "".join(parts) + closing + "(?: .*)?$"

    def split(self, text: pa.Array) -> tuple[dict[str, pa.Array], np.ndarray]:
        """Raw values (null where absent) for every field, and which lines fit the layout."""
        n = len(text)
        fast, ok = self._fast(text)
        if ok.all():
            return fast, ok
        idx = np.flatnonzero(~ok)
        sub = text.take(pa.array(idx))
        m = pc.extract_regex(sub, self.regex)
        matched = pc.is_valid(m).to_numpy(zero_copy_only=False)
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        out = {}
        for i, it in enumerate(self.items):
            vals = pc.struct_field(m, f"f{i}")
            if it.quoted:
                vals = pc.replace_substring_regex(vals, r'^"(.*)"$', r"\1")
            base = fast.get(it.name, pa.nulls(n, pa.string()))
            out[it.name] = pc.replace_with_mask(base, pa.array(mask), vals.cast(pa.string()))
        ok = ok.copy()
        ok[idx[matched]] = True
        return out, ok

    def _fast(self, text: pa.Array) -> tuple[dict[str, pa.Array], np.ndarray]:
        n, q = len(text), len(self.quoted)
        m = 2 * q + 1
        parts = pc.split_pattern(text, '"', max_splits=2 * q)
        ok = cv.as_mask(pc.equal(pc.list_value_length(parts), m))
        if not ok.any():
            return {}, ok
        if not ok.all():
            parts = parts.filter(pa.array(ok))
        grid = _Grid(pc.list_flatten(parts), m)
        sub_ok = np.ones(grid.n, dtype=bool)
        raw: dict[str, pa.Array] = {}
        for s, seg in enumerate(self.segments):
            if s < q:
                raw[self.quoted[s].name] = grid.element(2 * s + 1)
                # A quoted value split at an escaped quote (`\"`) ends with a backslash.
                sub_ok &= grid.last_byte(2 * s + 1) != 92
            first, last = s == 0, s == len(self.segments) - 1
            if not seg:
                if not (first or last):  # just the space between two quoted values
                    sub_ok &= (grid.lengths[:, 2 * s] == 1) & (grid.first_byte(2 * s) == 32)
                continue
            sub_ok &= self._words(grid.element(2 * s), seg, first, last, raw)
        if ok.all():
            return raw, sub_ok
        idx = np.flatnonzero(ok)
        ok[idx] = sub_ok
        fast_rows = np.zeros(n, dtype=bool)
        fast_rows[idx] = True
        mask = pa.array(fast_rows)
        return {k: pc.replace_with_mask(pa.nulls(n, pa.string()), mask, v) for k, v in raw.items()}, ok

    def _words(self, part: pa.Array, seg: list[Item], first: bool, last: bool,
               raw: dict[str, pa.Array]) -> np.ndarray:
        """Split one unquoted stretch on single spaces into `raw`; the mask says where it fit."""
        lead = 0 if first else 1  # a stretch after a quoted value starts with its space
        trail = 0 if last else 1  # … and one before a quoted value ends with one
        n_words = sum(2 if it.bracket else 1 for it in seg)
        width = lead + n_words + trail
        words = pc.split_pattern(part, " ")
        count = pc.list_value_length(words)
        if last:
            required = sum(2 if it.bracket else 1 for it in seg if self.names.index(it.name) < self.n_required)
            ok = cv.as_mask(pc.greater_equal(count, lead + required))
        else:
            required = n_words
            ok = cv.as_mask(pc.equal(count, width))
        # Fixed-size slices pad short lists with nulls: optional tail fields come out null.
        grid = fixed_width(words, width)
        if lead:
            ok &= grid.lengths[:, 0] == 0
        if trail:
            ok &= grid.lengths[:, -1] == 0
        ok &= (grid.lengths[:, lead:lead + required] > 0).all(axis=1)  # no doubled spaces
        pos = lead
        for it in seg:
            value = grid.element(pos)
            if it.bracket:
                value = pc.binary_join_element_wise(value, grid.element(pos + 1), " ")
                fits = pc.and_(pc.starts_with(value, "["), pc.ends_with(value, "]"))
                ok &= cv.as_mask(pc.or_kleene(fits, pc.is_null(value)))
                value = pc.utf8_slice_codeunits(value, 1, -1)
                pos += 1
            raw[it.name] = value
            pos += 1
        return ok


def fixed_width(lists: pa.Array, width: int) -> _Grid:
    """The first `width` elements of every list (nulls where shorter or where the list is null);
    `.element(j)` is then one strided `take`, about twice as fast as `list_element`."""
    lengths = pc.min_max(pc.list_value_length(lists))
    if lengths["min"].as_py() == width == lengths["max"].as_py() and lists.null_count == 0:
        return _Grid(pc.list_flatten(lists), width)  # the usual case: no copy at all
    fsl = pc.list_slice(lists, 0, width, return_fixed_size_list=True)
    # `.values` keeps `width` slots for null lists too (`.flatten()` would drop them).
    return _Grid(fsl.values.slice(fsl.offset * width, len(fsl) * width), width)


class _Grid:
    """Flat strings that are `width` per row (a split result), with numpy views of their bytes."""

    def __init__(self, flat: pa.Array, width: int) -> None:
        self.flat, self.width = flat, width
        self.n = len(flat) // width
        bufs = flat.buffers()
        self.offsets = np.frombuffer(bufs[1], np.int32, count=len(flat) + 1, offset=flat.offset * 4)
        self.data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(1, np.uint8)
        self.lengths = np.diff(self.offsets).reshape(self.n, width)

    def element(self, j: int) -> pa.Array:
        """Element `j` of every row."""
        return self.flat.take(pa.array(np.arange(j, self.n * self.width, self.width)))

    def first_byte(self, j: int) -> np.ndarray:
        """First byte of element `j` of every row (0 where empty)."""
        at = self.offsets[j:-1:self.width]
        return np.where(self.lengths[:, j] > 0, self.data[np.minimum(at, len(self.data) - 1)], 0)

    def last_byte(self, j: int) -> np.ndarray:
        """Last byte of element `j` of every row (0 where empty)."""
        at = self.offsets[j + 1::self.width] - 1
        return np.where(self.lengths[:, j] > 0, self.data[np.clip(at, 0, len(self.data) - 1)], 0)


def _item(tok: str) -> Item:
    if tok.startswith('"'):
        return Item(tok.strip('"'), quoted=True)
    if tok.startswith("["):
        return Item(tok.strip("[]"), bracket=True)
    return Item(tok)


def strip_port(arr: pa.Array) -> pa.Array:
    """`client:port` → client: IPv4, bracketed or bare IPv6 (ALB writes `2a02:…:f215:50718`)."""
    arr = cv.nullify(arr)
    halves = pc.split_pattern(arr, ":", max_splits=1, reverse=True)
    fits = cv.as_mask(pc.equal(pc.list_value_length(halves), 2))
    if not fits.all():
        return pc.replace_substring_regex(arr, r"^\[?([^\]]*?)\]?:\d+$", r"\1")
    address = pc.list_element(halves, 0)
    if pc.any(pc.starts_with(address, "[")).as_py():
        address = pc.utf8_trim(address, "[]")
    return address


def time_iso_z(arr: pa.Array) -> pa.Array:
    """AWS `2018-07-02T22:23:00.186641Z` timestamps, vectorized (others per distinct value)."""
    arr = arr.cast(pa.string())
    try:  # the usual case: every value is ISO 8601 with `Z`
        return arr.cast(pa.timestamp("ns", tz="UTC")).cast(TS, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    fits = pc.fill_null(pc.match_substring_regex(arr, _ISO_Z), False)
    out = cv.set_null(arr, pc.invert(fits)).cast(pa.timestamp("ns", tz="UTC")).cast(TS, safe=False)
    return pc.coalesce(out, cv.time_iso(arr))


def seconds_ms(arr: pa.Array) -> pa.Array:
    """Seconds (`0.000043`) to milliseconds; `-1` (AWS: unknown) and `-` become null."""
    try:
        ms = pc.round(pc.multiply(arr.cast(pa.float64()), 1000.0), 6)  # 9.511, not 9.511000000000001
    except pa.ArrowInvalid:
        return pc.round(cv.duration_ms(arr, "s"), 6)
    return pc.if_else(pc.less(ms, 0), pa.scalar(None, pa.float64()), ms)


def sum_ms(*durations: pa.Array) -> pa.Array:
    """The sum of durations in ms; null when any is null (AWS writes -1 when one is unknown)."""
    total = durations[0]
    for d in durations[1:]:
        total = pc.add(total, d)
    return pc.round(total, 6)  # float noise of the sum (0.086 + 0.048 + 0.037 s) stays out


def split_url_request(request: pa.Array) -> dict[str, pa.Array]:
    """`convert.split_request` for load balancers: `METHOD scheme://host:port/path?q PROTO`.

    Splits on literals only (several times faster than the target regex); lines of another
    shape (origin-form, IPv6 hosts, fragments, `"- - - "`) take `convert.split_request`.
    """
    n = len(request)
    words = pc.split_pattern(request, " ")
    fit = cv.as_mask(pc.equal(pc.list_value_length(words), 3))
    three = fixed_width(words, 3)
    method, url, protocol = (three.element(i) for i in range(3))
    fit &= cv.as_mask(pc.ascii_is_alpha(method)) & cv.as_mask(pc.starts_with(protocol, "HTTP/"))
    halves = pc.split_pattern(url, "://", max_splits=1)
    fit &= cv.as_mask(pc.equal(pc.list_value_length(halves), 2))
    two = fixed_width(halves, 2)
    scheme, rest = two.element(0), two.element(1)
    fit &= cv.as_mask(pc.ascii_is_alpha(scheme))
    for odd in "#@[":  # fragments, user info, IPv6 literals: the general splitter
        fit &= ~cv.as_mask(pc.match_substring(rest, odd))
    auth_path = pc.split_pattern(rest, "/", max_splits=1)
    fit &= cv.as_mask(pc.equal(pc.list_value_length(auth_path), 2))
    ap = fixed_width(auth_path, 2)
    authority, after = ap.element(0), ap.element(1)
    fit &= ~cv.as_mask(pc.match_substring(authority, "?"))
    path_query = fixed_width(pc.split_pattern(after, "?", max_splits=1), 2)
    host_port = fixed_width(pc.split_pattern(authority, ":", max_splits=1), 2)
    port = host_port.element(1)
    fit &= cv.as_mask(pc.or_kleene(pc.is_null(port), pc.ascii_is_decimal(port)))
    out = {
        "method": method, "scheme": scheme, "host": pc.ascii_lower(host_port.element(0)),
        "path": pc.binary_join_element_wise("/", path_query.element(0), ""),
        "query": path_query.element(1), "protocol": protocol, "request_raw": pa.nulls(n, pa.string()),
    }
    if fit.all():
        return out
    idx = np.flatnonzero(~fit)
    slow = cv.split_request(request.take(pa.array(idx)))
    mask = pa.array(~fit)
    return {k: pc.replace_with_mask(v, mask, slow[k].cast(pa.string())) for k, v in out.items()}


def load_balancer_variables(fields: tuple[str, ...]) -> list[Var]:
    """The variables of an AWS load balancer log (ALB, ELB): user agent, status and sent bytes to
    their columns, `fields` kept as text in `fields`."""
    return [Var("user_agent", "text", "user_agent"), Var("elb_status_code", "status", "status"),
            Var("sent_bytes", "int", "bytes_sent"), *(Var(name, "str", None) for name in fields)]


def load_balancer_columns(raw: dict[str, pa.Array], upstream: str
                          ) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """Columns shared by ALB and ELB: `ts` from `time`, the client without its port, the
    absolute-form request URL split, `request_time_ms` the sum of the three processing times
    (null when one is -1) and `upstream_time_ms` the `<upstream>_processing_time`."""
    times = [seconds_ms(raw[k]) for k in
             ("request_processing_time", f"{upstream}_processing_time", "response_processing_time")]
    request = split_url_request(raw["request"])
    columns = {k: request[k] for k in ("method", "scheme", "host", "path", "query", "protocol")}
    columns.update({
        "ts": time_iso_z(raw["time"]),
        "client_ip": strip_port(raw["client"]),
        "request_time_ms": sum_ms(*times),
        "upstream_time_ms": times[1],
    })
    return columns, {"request": request["request_raw"]}


class DelimitedFormat(LogFormat):
    """A format made of one `Delimited` layout and the kind of each of its fields.

    `variables` say how `convert_vars` turns raw values into columns (`Var.target`) or
    `fields` (no target); `derive(raw)` returns the columns and fields that need several raw
    values or a product's own rule (timestamps, `client:port`, durations, the request line).
    """

    def __init__(self, name: str, description: str, layout: Delimited, variables: list[Var],
                 derive: Callable[[dict[str, pa.Array]], tuple[dict[str, pa.Array], dict[str, pa.Array]]]
                 ) -> None:
        self.name, self.description = name, description
        self.layout = layout
        self.variables = {v.name: v for v in variables}
        self.derive = derive

    def parse(self, lines: Lines, state: dict[str, Any]) -> Parsed:
        """Parse a block; lines that do not fit the layout become rejects."""
        n = len(lines)
        if n == 0:
            return Parsed(empty(REQUESTS), empty(REJECTS))
        raw, ok = self.layout.split(lines.text)
        raw = {k: raw.get(k, pa.nulls(n, pa.string())) for k in self.layout.names}
        columns, fields = convert_vars(raw, self.variables, n)
        derived, extra = self.derive(raw)
        columns.update(derived)
        fields.update(extra)
        return assemble(lines, columns, pa.array(ok), fields, reason=f"does not match the {self.name} layout")
