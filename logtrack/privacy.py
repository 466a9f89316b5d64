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
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .config import Config
from .enrich import encoding
from .ipaddrs import AddressCache, truncate_address, truncate_ips

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
    # Truncated client addresses of earlier batches (identity keeps its own: either fills a batch).
    addresses: AddressCache = field(default_factory=AddressCache, init=False, compare=False, repr=False)

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
            return truncate_address(str(addr.ipv4_mapped), cfg.ipv4_prefix, cfg.ipv6_prefix) or token
        return truncate_address(str(addr), cfg.ipv4_prefix, cfg.ipv6_prefix) or token

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
        new = truncate_ips(table.column("client_ip"), cfg.ipv4_prefix, cfg.ipv6_prefix, cfg.addresses)
        table = table.set_column(i, table.field(i), new)
    return table
