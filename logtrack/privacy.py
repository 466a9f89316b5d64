"""Privacy by default (DESIGN §2, §4): truncate IPs, scrub emails and secrets from every output.

`apply(table, cfg)` is what every command from `sessions` on runs over requests before writing:
`client_ip` truncated (IPv4 /24 → `a.b.c.0`, IPv6 /48) unless `keep_ip`; emails (also `%40`),
secret-looking parameters (`token=`, `password=`, `api_key=`, `access_token`, `secret`, OAuth
`code`, …), AWS access keys, JWTs, bearer tokens and URL credentials replaced by `REDACTED` in
path, query, referer and `fields` values; emails also in user_agent and remote_user; IPs in
`fields` (`http_x_forwarded_for`, `http_x_real_ip`, …) truncated too. `scrub_text` does the same
for a rejected line's raw text. `--keep-ip` keeps IPs only; scrubbing always happens.

Everything is RE2 over whole columns, restricted to the rows a cheap prefilter flags; IP
truncation parses each distinct address once. In free text, IPv4 prefixes that are not a
multiple of 8 round down to one (a /20 setting truncates text to /16: more, never less); IPv6
addresses in text are validated in Python, once per distinct flagged value.

Config section (all optional): `privacy: {keep_ip: false, ip_truncate: {ipv4: 24, ipv6: 48},
redact_params: [my_param]}`; `ip_truncate` falls back to `identity.ip_truncate`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .config import Config
from .enrich import encoding

REDACTED = "REDACTED"
_SECRET_WORDS = (r"token|passw(?:or)?d|pwd|secret|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
                 r"|credential|session[_-]?id|sessid|signature|authorization")
_EXACT_SECRETS = ("auth", "sig", "key", "code", "sid", "otp", "pin")
_NAME_CHARS = r"[A-Za-z0-9_.\-\[\]]"
_PLAIN_VALUE = r"[^&#;\s\"']*"
# A percent-encoded value inside an encoded URL: anything but an encoded `&` (%26).
_ENCODED_VALUE = r"(?:[^&#;\s%\"']|%(?:[013-9A-Fa-f][0-9A-Fa-f]|2[0-57-9A-Fa-f]))*"
_EMAIL = (r"[A-Za-z0-9._%+\-]+(?:@|%40|%2540)(?:[A-Za-z][A-Za-z0-9\-]*|[0-9]{2,}[A-Za-z0-9\-]*)"
          r"(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_JWT = r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"
_AWS_KEY = r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"
_BEARER = r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/\-]+=*"
_URL_CREDENTIALS = r"(://)[^/@\s:?#]+:[^/@\s?#]+@"
_PREFILTER = (r"(?i)@|%40|%2540|eyJ|AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|bearer|basic|token|passw|pwd|secret|key"
              r"|credential|sess|signature|authorization|auth|sig|code|sid|otp|pin")
_IP_KEYS = r"(?:^|_)(?:addr|ip|for|forwarded|client)(?:$|_)"
# fields keys whose whole value is a secret: credentials headers, the raw Cookie header, session
# cookies (`cookie_sessionid`, `cookie_laravel_session`, `cookie_connect.sid`).
_SECRET_KEYS = (rf"(?i){_SECRET_WORDS}|^http_(?:authorization|proxy_authorization|cookie)$|(?:^|_)auth(?:$|_)"
                r"|session|sess$|[_.]sid$")
_IPV4_TEXT = r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b"
_IPV6_CANDIDATE = r"(?i)[0-9a-f]{0,4}:[0-9a-f]{0,4}:"
_IPV6_TOKEN = re.compile(r"(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?"
                         r"(?:%[0-9A-Za-z]+)?(?![0-9A-Za-z:])")


@dataclass(frozen=True)
class PrivacyConfig:
    """IP truncation and scrubbing settings (DESIGN §4)."""

    keep_ip: bool = False
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    redact_params: tuple[str, ...] = ()
    # Scrubbed text of the values that needed it, across batches (the same few recur).
    cache: encoding.ValueCache = field(default_factory=lambda: encoding.ValueCache(50_000), init=False,
                                       compare=False, repr=False)

    @classmethod
    def from_config(cls, config: Config, keep_ip: bool | None = None) -> PrivacyConfig:
        """Read the `privacy` section; `keep_ip` (the `--keep-ip` flag) overrides the file."""
        section = config.section("privacy", {"keep_ip", "ip_truncate", "redact_params"})
        file_keep = section.get("keep_ip", False)
        if not isinstance(file_keep, bool):
            raise config.error(("privacy", "keep_ip"), "must be true or false")
        if "ip_truncate" in section:
            v4, v6 = parse_ip_truncate(config, ("privacy", "ip_truncate"), section["ip_truncate"])
        else:
            ident = config.section("identity")
            v4, v6 = parse_ip_truncate(config, ("identity", "ip_truncate"), ident.get("ip_truncate"))
        params = section.get("redact_params", [])
        if not isinstance(params, list) or not all(isinstance(p, str) and re.fullmatch(r"[\w.\-\[\]]+", p)
                                                   for p in params):
            raise config.error(("privacy", "redact_params"), "must be a list of parameter names")
        return cls(keep_ip=file_keep if keep_ip is None else keep_ip, ipv4_prefix=v4, ipv6_prefix=v6,
                   redact_params=tuple(params))


def parse_ip_truncate(config: Config, path: tuple[str, ...], value: Any) -> tuple[int, int]:
    """Validate an `ip_truncate: {ipv4: 24, ipv6: 48}` mapping (None gives the defaults)."""
    if value is None:
        return 24, 48
    if not isinstance(value, dict):
        raise config.error(path, "must be a mapping like {ipv4: 24, ipv6: 48}")
    limits = {"ipv4": 32, "ipv6": 128}
    out = {"ipv4": 24, "ipv6": 48}
    for key, prefix in value.items():
        if key not in limits:
            raise config.error(path + (key,), f"unknown key {key!r} (known: ipv4, ipv6)")
        if isinstance(prefix, bool) or not isinstance(prefix, int) or not 0 <= prefix <= limits[key]:
            raise config.error(path + (key,), f"must be a prefix length from 0 to {limits[key]}")
        out[key] = prefix
    return out["ipv4"], out["ipv6"]


def _array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    return encoding.single(col)


class Truncated(NamedTuple):
    """Truncated addresses of a column, per distinct value (shared by identity and privacy)."""

    encoded: pa.DictionaryArray  # the column dictionary-encoded: distinct values and row indices
    truncated: pa.Array  # string, aligned with encoded.dictionary; null where not an address
    v4: np.ndarray  # int64, aligned too: the truncated IPv4 value of canonical dotted quads, else -1


def truncation(arr: pa.Array | pa.ChunkedArray, ipv4_prefix: int = 24, ipv6_prefix: int = 48) -> Truncated:
    """Truncate each distinct address of a column once; remembered for that very array, so
    `identify` and `apply` over the same batch share the work (see enrich/encoding.py)."""
    return encoding.memo(("truncate", ipv4_prefix, ipv6_prefix), _array(arr),
                         lambda a: _truncation(a, ipv4_prefix, ipv6_prefix))


def _truncation(arr: pa.Array, ipv4_prefix: int, ipv6_prefix: int) -> Truncated:
    encoded = encoding.encode(arr)
    return Truncated(encoded, *_truncate_distinct(encoded.dictionary, ipv4_prefix, ipv6_prefix))


def truncate_ips(arr: pa.Array | pa.ChunkedArray, ipv4_prefix: int = 24, ipv6_prefix: int = 48) -> pa.Array:
    """Zero the host bits of each address (`203.0.113.77` → `203.0.113.0`, IPv6 to /48 `2001:db8:1::`).

    Each distinct value is handled once: dotted IPv4 with numpy, anything else with `ipaddress`
    (IPv4-mapped IPv6 is truncated as IPv4). Values that are not addresses become null.
    """
    t = truncation(arr, ipv4_prefix, ipv6_prefix)
    return pc.take(t.truncated, t.encoded.indices)


_OCTET_TEXT = pa.array([str(i) for i in range(256)], pa.string())


def dotted_quads(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_dotted_quads`, once per array (rules' `client_ip` networks and IP truncation read the
    same distinct addresses of a batch)."""
    return encoding.memo("quads", _array(arr), _dotted_quads)


def _dotted_quads(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each string read as a canonical dotted quad (`1.2.3.4`: digits, no leading zeros, octets
    at most 255) with numpy over the array's bytes: (value as int64, 0 where not one; whether it
    is one; the byte offset of each of its three dots, shape (3, n), meaningful where it is one)."""
    n = len(arr)
    dots = np.zeros((3, n), np.int64)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool), dots
    offsets = np.frombuffer(arr.buffers()[1], np.int32, n + 1, arr.offset * 4).astype(np.int64)
    begin, end = offsets[:-1], offsets[1:]
    ok = (end - begin >= 7) & (end - begin <= 15)
    if arr.null_count:
        ok &= arr.is_valid().to_numpy(zero_copy_only=False)
    lo, hi = int(offsets[0]), int(offsets[-1])
    if not ok.any() or arr.buffers()[2] is None:
        return np.zeros(n, np.int64), np.zeros(n, bool), dots
    data = np.frombuffer(arr.buffers()[2], np.uint8, hi)
    seg = data[lo:]
    # The value each byte belongs to; values with a byte that is neither a digit nor a dot, or
    # without exactly three dots, are not quads (non-ASCII bytes are neither).
    owner = np.repeat(np.arange(n), end - begin)
    ok[owner[(seg - 48 > 9) & (seg != 46)]] = False
    dot_at = np.flatnonzero(seg == 46)
    count = np.bincount(owner[dot_at], minlength=n)
    ok &= count == 3
    quads = np.flatnonzero(ok)
    first = (np.cumsum(count) - count)[quads]
    d1, d2, d3 = (dot_at[first + k] + lo for k in range(3))
    # The four octets as rows of (4, quads) arrays: their first byte, width and digits.
    start = np.stack([begin[quads], d1 + 1, d2 + 1, d3 + 1])
    width = (np.stack([d1, d2, d3, end[quads]]) - start).astype(np.int16)  # small types: less to move
    c0, c1, c2 = (data[np.minimum(start + k, hi - 1)].astype(np.int16) - 48 for k in range(3))
    octet = np.where(width == 1, c0, np.where(width == 2, c0 * 10 + c1, c0 * 100 + c1 * 10 + c2))
    good = ((width >= 1) & (width <= 3) & ((width == 1) | (c0 != 0)) & (octet <= 255)).all(axis=0)
    octet = octet.astype(np.int64)
    value = (octet[0] << 24) | (octet[1] << 16) | (octet[2] << 8) | octet[3]
    ok[quads] = good
    out = np.zeros(n, np.int64)
    out[quads] = np.where(good, value, 0)
    dots[:, quads] = np.stack([d1, d2, d3])
    return out, ok, dots


def _quad_prefixes(arr: pa.Array, canonical: np.ndarray, dots: np.ndarray, keep: int) -> pa.Array:
    """The truncated text of canonical quads whose prefix is a whole number of octets: the first
    `keep` octets as written (a canonical octet's text is its number's) and `0` for the others,
    built by copying bytes (null where not canonical)."""
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], np.int32, n + 1, arr.offset * 4).astype(np.int64)
    begin = offsets[:-1]
    cut = offsets[1:] if keep == 4 else (begin if keep == 0 else dots[keep - 1] + 1)
    kept = np.where(canonical, cut - begin, 0)
    suffix = b"" if keep == 4 else b".".join([b"0"] * (4 - keep))
    length = kept + np.where(canonical, len(suffix), 0)
    out_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(length, out=out_offsets[1:])
    total = int(out_offsets[-1])
    hi = int(offsets[-1])
    source = np.concatenate([np.frombuffer(arr.buffers()[2], np.uint8, hi) if hi else np.zeros(0, np.uint8),
                             np.frombuffer(suffix, np.uint8)])
    at = np.arange(total) - np.repeat(out_offsets[:-1], length)  # byte position within its text
    row_kept = np.repeat(kept, length)
    src = np.where(at < row_kept, np.repeat(begin, length) + at, hi + at - row_kept)
    mask = pa.py_buffer(np.packbits(canonical, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), n, [mask, pa.py_buffer(out_offsets.astype(np.int32)),
                                                  pa.py_buffer(source[src].tobytes())],
                                 null_count=int(n - canonical.sum()))


def _truncate_distinct(distinct: pa.Array, ipv4_prefix: int, ipv6_prefix: int) -> tuple[pa.Array, np.ndarray]:
    """(truncated texts, truncated IPv4 values or -1) of distinct addresses: canonical dotted
    quads with numpy, the others (IPv6, leading zeros, junk) in Python, cached across batches."""
    if len(distinct) == 0:
        return pa.array([], pa.string()), np.empty(0, np.int64)
    if distinct.type != pa.string():
        distinct = distinct.cast(pa.string())
    value, canonical, dots = dotted_quads(distinct)
    value = value & (((1 << 32) - 1) ^ ((1 << (32 - ipv4_prefix)) - 1))  # a copy: the parse is shared
    if ipv4_prefix % 8 == 0:
        texts = _quad_prefixes(distinct, canonical, dots, ipv4_prefix // 8)
    else:
        octets = [pa.array((value >> s) & 255) for s in (24, 16, 8, 0)]
        texts = pc.binary_join_element_wise(*[pc.take(_OCTET_TEXT, o) for o in octets], ".")
    v4 = np.where(canonical, value, -1)
    if canonical.all():
        return texts, v4
    other = np.flatnonzero(~canonical)
    fixed = [None if v is None else _truncate_text(v, ipv4_prefix, ipv6_prefix)
             for v in distinct.take(pa.array(other)).to_pylist()]
    return pc.replace_with_mask(texts, pa.array(~canonical), pa.array(fixed, pa.string())), v4


_V4_TEXT = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})")


@lru_cache(maxsize=65536)
def _truncate_text(text: str, ipv4_prefix: int, ipv6_prefix: int) -> str | None:
    """One value that is not a canonical dotted quad: dotted IPv4 (leading zeros allowed) numerically,
    anything else with `ipaddress`."""
    found = _V4_TEXT.fullmatch(text)
    if found is None:
        return _truncate_one(text, ipv4_prefix, ipv6_prefix)
    octets = [int(g) for g in found.groups()]
    if max(octets) > 255:
        return _truncate_one(text, ipv4_prefix, ipv6_prefix)
    value = int.from_bytes(bytes(octets), "big") & (((1 << 32) - 1) ^ ((1 << (32 - ipv4_prefix)) - 1))
    return ".".join(str(b) for b in value.to_bytes(4, "big"))


@lru_cache(maxsize=65536)
def _truncate_one(text: str | None, ipv4_prefix: int, ipv6_prefix: int) -> str | None:
    if text is None:
        return None
    candidate = text.strip().strip("[]").split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits, prefix = (32, ipv4_prefix) if addr.version == 4 else (128, ipv6_prefix)
    # The network address, as `ip_network(f"{addr}/{prefix}", strict=False)` gives it, without
    # its string round trip (several times slower; new IPv6 addresses come every batch).
    return str(type(addr)(int(addr) & (((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1))))


def _ipv4_text_replacement(prefix: int) -> tuple[str, str] | None:
    keep = prefix // 8  # round down: truncate more, never less
    if keep >= 4:
        return None
    kept = [rf"\{i + 1}" for i in range(keep)]
    return _IPV4_TEXT, ".".join(kept + ["0"] * (4 - keep))


def _truncate_ips_in_text(arr: pa.Array, cfg: PrivacyConfig) -> pa.Array:
    replacement = _ipv4_text_replacement(cfg.ipv4_prefix)
    if replacement is not None:
        arr = pc.replace_substring_regex(arr, replacement[0], replacement[1])
    flagged = pc.fill_null(pc.match_substring_regex(arr, _IPV6_CANDIDATE), False)
    if not pc.any(flagged).as_py():
        return arr
    subset = pc.dictionary_encode(pc.filter(arr, flagged))

    def fix(match: re.Match[str]) -> str:
        token = match.group(0)
        try:
            addr = ipaddress.IPv6Address(token.split("%", 1)[0])
        except ValueError:
            return token
        if addr.ipv4_mapped is not None:
            return _truncate_one(str(addr.ipv4_mapped), cfg.ipv4_prefix, cfg.ipv6_prefix) or token
        return _truncate_one(str(addr), cfg.ipv4_prefix, cfg.ipv6_prefix) or token

    fixed = [_IPV6_TOKEN.sub(fix, v) for v in subset.dictionary.to_pylist()]  # per distinct value
    return pc.replace_with_mask(arr, flagged, pc.take(pa.array(fixed, pa.string()), subset.indices))


def _secret_param_patterns(cfg: PrivacyConfig) -> list[tuple[str, str]]:
    exact = "|".join(_EXACT_SECRETS + tuple(re.escape(p) for p in cfg.redact_params))
    name = rf"(?:{_NAME_CHARS}*(?:{_SECRET_WORDS}){_NAME_CHARS}*|{exact})"
    return [
        (rf"(?i)((?:^|[?&;])\s*{name}=){_PLAIN_VALUE}", rf"\1{REDACTED}"),
        (rf"(?i)((?:%3F|%26|%3B){name}%3D){_ENCODED_VALUE}", rf"\1{REDACTED}"),
    ]


@lru_cache(maxsize=64)
def _prefilter(redact_params: tuple[str, ...], emails_only: bool) -> str:
    # A necessary condition for any rule to match: rows it does not flag would not change.
    if emails_only:
        return r"@|%40|%2540"
    return "|".join([_PREFILTER, *(re.escape(p) for p in redact_params)])


def _scrub_flagged(sub: pa.Array, cfg: PrivacyConfig, emails_only: bool) -> pa.Array:
    rules = [(_EMAIL, REDACTED)]
    if not emails_only:
        rules = [(_JWT, REDACTED), (_AWS_KEY, REDACTED), (_BEARER, rf"\1 {REDACTED}"),
                 (_URL_CREDENTIALS, r"\1"), *_secret_param_patterns(cfg), *rules]
    for pattern, replacement in rules:
        sub = pc.replace_substring_regex(sub, pattern, replacement)
    return sub


def scrub_strings(arr: pa.Array | pa.ChunkedArray, cfg: PrivacyConfig, emails_only: bool = False) -> pa.Array:
    """Replace emails and secrets in a string column with REDACTED (only flagged values are touched).

    Works on the distinct values (a regex call costs per row even for nulls, and most columns
    repeat a lot); a column with nothing to scrub comes back as the same array, uncopied.
    """
    arr = _array(arr)
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    if len(arr) == 0 or arr.null_count == len(arr):
        return arr
    enc = encoding.encode(arr)
    distinct = enc.dictionary
    flagged = pc.match_substring_regex(distinct, _prefilter(cfg.redact_params, emails_only))
    if not pc.any(flagged).as_py():
        return arr
    values = pc.filter(distinct, flagged).to_pylist()
    keys = [(emails_only, v) for v in values]
    scrubbed = cfg.cache.get_many(keys)
    missing = [i for i, v in enumerate(scrubbed) if v is None]
    if missing:
        done = _scrub_flagged(pa.array([values[i] for i in missing], pa.string()), cfg, emails_only).to_pylist()
        cfg.cache.put_many([keys[i] for i in missing], done)
        for i, v in zip(missing, done, strict=True):
            scrubbed[i] = v
    if scrubbed == values:
        return arr  # flagged but nothing to redact (`/api/v1/sessions`)
    fixed = pc.replace_with_mask(distinct, flagged, pa.array(scrubbed, pa.string()))
    return pc.take(fixed, enc.indices)


def scrub_text(arr: pa.Array | pa.ChunkedArray, cfg: PrivacyConfig) -> pa.Array:
    """Scrub free text (a rejected line's raw text): secrets, emails and, unless keep_ip, IPs."""
    out = scrub_strings(arr, cfg)
    return out if cfg.keep_ip or len(out) == 0 else _truncate_ips_in_text(out, cfg)


def _scrub_fields(col: pa.ChunkedArray | pa.Array, cfg: PrivacyConfig) -> pa.ChunkedArray:
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    out = []
    for chunk in chunks:
        if len(chunk) == 0 or chunk.null_count == len(chunk) or len(chunk.keys) == 0:
            out.append(chunk)  # no entries at all (formats without extra fields): nothing to scrub
            continue
        if chunk.offset:
            # A slice's offsets start mid-buffer, which MapArray.from_arrays cannot take with a
            # null mask: scrub a compact copy.
            chunk = pa.concat_arrays([chunk])
        keys, items = chunk.keys, chunk.items
        items = scrub_strings(items, cfg)
        secret = pc.fill_null(pc.match_substring_regex(keys, _SECRET_KEYS), False)
        items = pc.if_else(pc.and_(secret, pc.is_valid(items)), pa.scalar(REDACTED), items)
        if not cfg.keep_ip:
            ip_key = pc.fill_null(pc.match_substring_regex(keys, _IP_KEYS, ignore_case=True), False)
            if pc.any(ip_key).as_py():
                items = pc.replace_with_mask(items, ip_key, _truncate_ips_in_text(pc.filter(items, ip_key), cfg))
        out.append(pa.MapArray.from_arrays(chunk.offsets, keys, items, type=chunk.type, mask=chunk.is_null()))
    return pa.chunked_array(out, col.type)


def scrub(table: pa.Table, cfg: PrivacyConfig) -> pa.Table:
    """Scrub emails and secrets from path, query, referer and fields values; emails from user_agent
    and remote_user. Columns the table lacks are skipped. IPs are left alone (see `apply`)."""
    for name in ("path", "query", "referer", "user_agent", "remote_user", "fields"):
        if name not in table.column_names:
            continue
        i = table.column_names.index(name)
        col = table.column(name)
        if name == "fields":
            new = _scrub_fields(col, cfg)
        else:
            new = scrub_strings(col, cfg, emails_only=name in ("user_agent", "remote_user"))
        table = table.set_column(i, table.field(i), new)
    return table


def apply(table: pa.Table, cfg: PrivacyConfig) -> pa.Table:
    """Privacy for a requests table before it is written: `scrub`, then client_ip (and IPs in
    fields, done by `scrub`'s fields pass) truncated unless `cfg.keep_ip`."""
    table = scrub(table, cfg)
    if not cfg.keep_ip and "client_ip" in table.column_names:
        i = table.column_names.index("client_ip")
        new = truncate_ips(table.column("client_ip"), cfg.ipv4_prefix, cfg.ipv6_prefix)
        table = table.set_column(i, table.field(i), new)
    return table
