"""Who made each request: `user_id`, `anonymous_id` and consent (DESIGN §4).

    identity:
      user_id: [field:remote_user, cookie:uid, query:user_id, header:x-user-id, 'path:/users/{id}']
      anonymous_id: [cookie:_lt_anon, hash]   # hash = keyed BLAKE2b of salt + truncated IP + UA
      salt_env: LOGTRACK_SALT                  # else a salt generated once in the state directory
      rotate: never                            # never (default) | daily (hash includes the UTC date)
      ip_truncate: {ipv4: 24, ipv6: 48}
      hash_emails: true                        # a user id that is an email becomes h:<keyed hash>
    consent:                                   # top-level section
      mode: anonymize                          # anonymize (drop identifiers) | drop (drop the row)
      signals: ['cookie:consent=no|0', 'header:sec-gpc=1', 'header:dnt=1']

Sources: `field:NAME` is a requests column (remote_user) or a `fields` key; `cookie:NAME` is
`fields['cookie_NAME']`, else parsed from a logged `Cookie` header; `header:X-Name` is
`fields['http_x_name']`; `query:NAME` is a decoded query parameter; `path:'/users/{id}'` is the
segment at `{id}` of paths starting with that template. Empty values, `-` and `REDACTED` count as
absent, so identity gives the same ids before or after `privacy.apply` (run it first anyway:
privacy redacts emails, and an email user id is then lost instead of hashed).

Hashes are computed once per distinct (IP, user agent[, date]) value, never per row.
"""

from __future__ import annotations

import hashlib  # noqa: F401 - tests count identity.hashlib.blake2b calls
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import hashing
from .config import Config
from .enrich import encoding
from .enrich.encoding import per_distinct, single
from .enrich.traffic import decode_distinct, query_params
from .errors import LogtrackError
from .hashing import HashCache, hash_email_values, hash_emails
from .ipaddrs import AddressCache, Truncated, truncation
from .privacy import parse_ip_truncate
from .schema import REQUESTS

SOURCE_KINDS = ("field", "cookie", "query", "header", "path")
ABSENT = ("", "-", "REDACTED")
SALT_FILE = "salt"
_IDENTITY_KEYS = {"user_id", "anonymous_id", "salt_env", "rotate", "ip_truncate", "hash_emails"}
_NO_DAY = np.iinfo(np.int32).min  # the day of a row without a timestamp (no id when rotating daily)


@dataclass(frozen=True)
class Source:
    """One place an id can come from: kind is field|cookie|query|header|path|hash."""

    kind: str
    name: str = ""


@dataclass(frozen=True)
class ConsentSignal:
    """An opt-out signal: the source's value (lower-cased, trimmed) is one of `values`."""

    source: Source
    values: tuple[str, ...]


DEFAULT_SIGNALS = (
    ConsentSignal(Source("cookie", "consent"), ("no", "0", "false", "denied")),
    ConsentSignal(Source("header", "sec-gpc"), ("1",)),
    ConsentSignal(Source("header", "dnt"), ("1",)),
)


@dataclass(frozen=True)
class ConsentConfig:
    """What counts as an opt-out and what happens then (`anonymize` or `drop`)."""

    mode: str = "anonymize"
    signals: tuple[ConsentSignal, ...] = DEFAULT_SIGNALS


@dataclass(frozen=True)
class IdentityConfig:
    """Identity settings; the defaults are what runs without a config file."""

    user_id: tuple[Source, ...] = (Source("field", "remote_user"),)
    anonymous_id: tuple[Source, ...] = (Source("hash"),)
    salt_env: str = "LOGTRACK_SALT"
    rotate: str = "never"
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    hash_emails: bool = True
    consent: ConsentConfig = field(default_factory=ConsentConfig)
    # Keyed hashes (per salt) and truncated addresses so far: a recurring visitor is a lookup.
    hashes: HashCache = field(default_factory=lambda: HashCache(), init=False, compare=False, repr=False)
    addresses: AddressCache = field(default_factory=AddressCache, init=False, compare=False, repr=False)

    @classmethod
    def from_config(cls, config: Config) -> IdentityConfig:
        """Read and validate the `identity` and `consent` sections (ConfigError with file:line)."""
        sec = config.section("identity", _IDENTITY_KEYS)
        kw: dict = {}
        if "user_id" in sec:
            kw["user_id"] = _sources(config, ("identity", "user_id"), sec["user_id"], allow_hash=False)
        if "anonymous_id" in sec:
            kw["anonymous_id"] = _sources(config, ("identity", "anonymous_id"), sec["anonymous_id"], allow_hash=True)
        if "salt_env" in sec:
            if not isinstance(sec["salt_env"], str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", sec["salt_env"]):
                raise config.error(("identity", "salt_env"), "must be an environment variable name")
            kw["salt_env"] = sec["salt_env"]
        if "rotate" in sec:
            if sec["rotate"] not in ("never", "daily"):
                raise config.error(("identity", "rotate"), f"must be never or daily, not {sec['rotate']!r}")
            kw["rotate"] = sec["rotate"]
        if "hash_emails" in sec:
            if not isinstance(sec["hash_emails"], bool):
                raise config.error(("identity", "hash_emails"), "must be true or false")
            kw["hash_emails"] = sec["hash_emails"]
        kw["ipv4_prefix"], kw["ipv6_prefix"] = parse_ip_truncate(config, ("identity", "ip_truncate"),
                                                                  sec.get("ip_truncate"))
        kw["consent"] = _consent(config)
        return cls(**kw)


def _parse_source(text: object, allow_hash: bool) -> Source | str:
    """A Source, or an error message."""
    if not isinstance(text, str):
        return "must be a string like cookie:uid"
    if text == "hash":
        return Source("hash") if allow_hash else "hash is only valid for anonymous_id"
    kind, sep, name = text.partition(":")
    if not sep or kind not in SOURCE_KINDS or not name:
        kinds = ", ".join(SOURCE_KINDS + (("hash",) if allow_hash else ()))
        return f"unknown source {text!r} (kinds: {kinds}; written kind:name)"
    if kind == "path" and len(re.findall(r"\{\w+\}", name)) != 1:
        return f"path template {name!r} needs exactly one {{placeholder}}"
    return Source(kind, name)


def _sources(config: Config, path: tuple, value: object, allow_hash: bool) -> tuple[Source, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise config.error(path, "must be a non-empty list of sources")
    out = []
    for i, item in enumerate(value):
        parsed = _parse_source(item, allow_hash)
        if isinstance(parsed, str):
            raise config.error(path + (i,), parsed)
        out.append(parsed)
    return tuple(out)


def _consent(config: Config) -> ConsentConfig:
    sec = config.section("consent")
    for key in sec:
        if key not in ("mode", "signals"):
            raise config.error(("consent", key), f"unknown key {key!r} (known: mode, signals)")
    mode = sec.get("mode", "anonymize")
    if mode not in ("anonymize", "drop"):
        raise config.error(("consent", "mode"), f"must be anonymize or drop, not {mode!r}")
    if "signals" not in sec:
        return ConsentConfig(mode=mode)
    raw = sec["signals"] or []
    if not isinstance(raw, list):
        raise config.error(("consent", "signals"), "must be a list like ['cookie:consent=no', 'header:sec-gpc=1']")
    signals = []
    for i, item in enumerate(raw):
        where, eq, values = item.partition("=") if isinstance(item, str) else ("", "", "")
        source = _parse_source(where, allow_hash=False)
        if not eq or not values or isinstance(source, str):
            raise config.error(("consent", "signals", i), "must be written kind:name=value[|value…], e.g. cookie:consent=no|0")
        signals.append(ConsentSignal(source, tuple(v.strip().lower() for v in values.split("|"))))
    return ConsentConfig(mode=mode, signals=tuple(signals))


def load_or_create_salt(state_dir: Path, env_name: str = "LOGTRACK_SALT") -> bytes:
    """The secret salt: `$env_name` when set and non-empty, else `state_dir/salt`, created once.

    The file holds 64 hex characters from `secrets` (mode 0600); its text is the salt, so putting
    the same text in the environment variable gives the same ids on another machine.
    """
    value = os.environ.get(env_name)
    if value:
        return value.encode("utf-8")
    path = Path(state_dir) / SALT_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        salt = path.read_bytes().strip()
        if not salt:
            raise LogtrackError(f"{path}: the salt file is empty; delete it or set {env_name}") from None
        return salt
    except OSError as exc:
        raise LogtrackError(f"cannot create the salt file {path}: {exc.strerror}") from exc
    salt = secrets.token_hex(32).encode("ascii")
    with os.fdopen(fd, "wb") as fh:  # O_EXCL: two concurrent first runs cannot both write
        fh.write(salt + b"\n")
    return salt


def _clean(values: pa.Array) -> pa.Array:
    if values.null_count == len(values):
        return values.cast(pa.string())  # the usual absent cookie or header: nothing to clean
    values = pc.utf8_trim_whitespace(values.cast(pa.string()))
    return pc.if_else(pc.is_in(values, pa.array(ABSENT)), pa.scalar(None, pa.string()), values)


def _clean_distinct(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`_clean` over the distinct values of a column (cheaper: the column repeats, and the
    encoding is shared with privacy's scrubbing of the same column)."""
    arr = single(col)
    if arr.null_count == len(arr):
        return arr.cast(pa.string())
    return per_distinct(arr, _clean)


def _field(table: pa.Table, key: str) -> pa.Array:
    n = table.num_rows
    if "fields" not in table.column_names or n == 0:
        return pa.nulls(n, pa.string())
    fields = single(table.column("fields"))
    if key not in encoding.field_keys(fields):
        return pa.nulls(n, pa.string())  # no row has it: skip the lookup over every map
    return pc.map_lookup(fields, key, "first")


def _column(table: pa.Table, name: str) -> pa.Array:
    if name in table.column_names:
        return single(table.column(name))
    return pa.nulls(table.num_rows, pa.string())


def resolve(table: pa.Table, source: Source) -> pa.Array:
    """The value of one source for every row (null when absent)."""
    n = table.num_rows
    if source.kind == "field":
        if source.name in REQUESTS.names and source.name != "fields":
            return _clean_distinct(_column(table, source.name))
        return _clean(_field(table, source.name))
    if source.kind == "header":
        return _clean(_field(table, "http_" + source.name.lower().replace("-", "_")))
    if source.kind == "cookie":
        direct = _clean(_field(table, "cookie_" + source.name))
        header = _field(table, "http_cookie")
        if header.null_count == n:
            return direct
        pattern = rf"(?:^|;)\s*{re.escape(source.name)}=(?P<v>[^;]*)"
        parsed = _clean(pc.struct_field(pc.extract_regex(header, pattern), [0]))
        return pc.coalesce(direct, parsed)
    if source.kind == "query":
        query = _column(table, "query")
        return _clean(query_params(query, (source.name,))[source.name])
    if source.kind == "path":
        literal = re.split(r"\{\w+\}", source.name)
        pattern = "^" + re.escape(literal[0]) + "(?P<id>[^/?#;]+)" + re.escape(literal[1]) + "(?:/|$)"
        return _clean(decode_distinct(pc.struct_field(pc.extract_regex(_column(table, "path"), pattern), [0])))
    raise ValueError(f"not a value source: {source}")


def _ip_ids(ips: Truncated) -> tuple[np.ndarray, np.ndarray, list]:
    """Per distinct address and a last null slot: (int64 id of the truncated text, which need a
    run-wide number, their texts): canonical IPv4 keeps its 32-bit value, any other truncated text
    (IPv6, null) gets 2**32 + a number, so equal ids always mean equal texts."""
    ids = np.append(ips.v4, -1)
    other = np.flatnonzero(ids < 0)
    texts = ips.truncated.take(pa.array(other[:-1])).to_pylist() + [None]
    return ids, other, [("ip", t) for t in texts]


def anonymous_hash(table: pa.Table, cfg: IdentityConfig, salt: bytes) -> pa.Array:
    """Keyed hash of truncated IP + user agent (+ UTC date when rotate: daily), once per distinct pair.

    Null when both the IP and the user agent are missing. Works on integer codes: each row's key
    packs the id of its truncated IP and a run-wide number for its user agent, looked up in a
    table of digests kept across batches (`cfg.hashes`, see hashing.py, one table per date when
    rotating), so a recurring visitor costs a vectorized lookup, not a hash, nor a string per row.
    """
    n = table.num_rows
    if n == 0:
        return pa.array([], pa.string())
    ips = truncation(_column(table, "client_ip"), cfg.ipv4_prefix, cfg.ipv6_prefix, cfg.addresses)
    uas = encoding.encode(_column(table, "user_agent"))
    ua_text = _clean(uas.dictionary)
    ua_list = pc.fill_null(ua_text, "").to_pylist() + [""]  # + the slot of null user agents
    ip_ids, other, ip_keys = _ip_ids(ips)
    numbers = cfg.hashes.ids(ip_keys + ua_list)  # one call: numbers of one batch never go stale
    ip_ids[other] = (1 << 32) + numbers[: len(ip_keys)]
    ip_code, ua_code = hashing.codes(ips.encoded)[0], hashing.codes(uas)[0]
    # From here on everything runs per distinct (IP, user agent[, day]) of the batch (a "unit",
    # a few thousand), and the rows only take their unit's digest at the end.
    pair_ip, pair_ua, row_unit = encoding.pairs(ip_code, len(ip_ids), ua_code, len(ua_list))
    keys = (numbers[len(ip_keys):][pair_ua] << 33) | ip_ids[pair_ip]
    ip_absent = np.append(pc.is_null(ips.truncated).to_numpy(zero_copy_only=False), True)
    ua_absent = np.append(pc.is_null(ua_text).to_numpy(zero_copy_only=False), True)
    valid = ~(ip_absent[pair_ip] & ua_absent[pair_ua])
    groups: list[tuple[int | None, np.ndarray]] = [(None, np.flatnonzero(valid))]
    if cfg.rotate == "daily":  # a null date gives a null id
        ts = pc.cast(_column(table, "ts"), pa.date32())
        day = pc.fill_null(ts.cast(pa.int32()), _NO_DAY).to_numpy()
        days, day_code = np.unique(day, return_inverse=True)
        unit_pair, unit_day, row_unit = encoding.pairs(row_unit, len(keys), day_code.reshape(-1), len(days))
        keys, valid = keys[unit_pair], valid[unit_pair]
        pair_ip, pair_ua = pair_ip[unit_pair], pair_ua[unit_pair]
        day = days[unit_day]
        valid &= day != _NO_DAY
        groups = [(int(d), np.flatnonzero(valid & (day == d))) for d in np.unique(day[valid]).tolist()]
    key = hashing.salt_key(salt)
    out = np.zeros(len(keys), "S32")
    for d, units in groups:
        suffix = "" if d is None else "\x1f" + str(np.datetime64(d, "D"))

        def texts(at: np.ndarray, units: np.ndarray = units, suffix: str = suffix) -> list[str]:
            # The hashed texts of keys not seen before: truncated IP, cleaned user agent[, date].
            slots = pa.concat_arrays([ips.truncated, pa.nulls(1, pa.string())])
            ip_list = pc.fill_null(slots.take(pa.array(pair_ip[units[at]])), "").to_pylist()
            return [f"{i}\x1f{ua_list[u]}{suffix}" for i, u in zip(ip_list, pair_ua[units[at]].tolist(), strict=True)]

        tbl = cfg.hashes.digest_table(salt, b"logtrack-anon", d)
        out[units] = tbl.digests(keys[units], texts, key, b"logtrack-anon")
    return hashing.hex_strings(out[row_unit], valid[row_unit])


def consent_denied(table: pa.Table, consent: ConsentConfig) -> pa.Array:
    """True where a configured opt-out signal is present (never null)."""
    denied = _denied(table, consent)
    return denied if denied is not None else pa.array(np.zeros(table.num_rows, dtype=bool))


def _denied(table: pa.Table, consent: ConsentConfig) -> pa.Array | None:
    """Like consent_denied, but None when no row has a signal (the usual case: nothing to mask)."""
    denied = None
    for signal in consent.signals:
        value = resolve(table, signal.source)
        if value.null_count == len(value):
            continue  # the log does not carry this signal
        hit = pc.fill_null(pc.is_in(pc.utf8_lower(value), pa.array(signal.values)), False)
        denied = hit if denied is None else pc.or_(denied, hit)
    return denied if denied is not None and pc.any(denied).as_py() else None


def _first(values: list[pa.Array], n: int) -> pa.Array:
    if not values:
        return pa.nulls(n, pa.string())
    return values[0] if len(values) == 1 else pc.coalesce(*values)  # the first source wins


def _user_ids(table: pa.Table, cfg: IdentityConfig, salt: bytes) -> pa.Array:
    """user_id before consent. A single column source (the default `field:remote_user`) is cleaned
    and email-hashed per distinct value (an encoding privacy reuses), then spread to the rows."""
    n = table.num_rows
    only = cfg.user_id[0] if len(cfg.user_id) == 1 else None
    if n and only is not None and only.kind == "field" and only.name in REQUESTS.names and only.name != "fields":
        col = _column(table, only.name)
        if col.null_count == len(col):
            return col.cast(pa.string())
        enc = encoding.encode(col)
        distinct = _clean(enc.dictionary)
        if cfg.hash_emails:
            distinct = hash_email_values(distinct, salt, cfg.hashes)
        return encoding.spread(distinct, enc.indices)
    user = _first([resolve(table, source) for source in cfg.user_id], n)
    if cfg.hash_emails and n:
        user = hash_emails(user, salt, cfg.hashes)
    return user


def identify(table: pa.Table, cfg: IdentityConfig, salt: bytes) -> pa.Table:
    """Add (or replace) `user_id`, `anonymous_id` and `consent` on a requests table.

    user_id: the first non-empty configured source (an email is replaced by `h:<keyed hash>`
    unless hash_emails is false). anonymous_id: the first non-empty source, `hash` being the
    keyed hash above. Opt-out rows get consent "denied" and no ids (mode anonymize) or are
    removed (mode drop).
    """
    n = table.num_rows
    user = _user_ids(table, cfg, salt)
    anon = _first([anonymous_hash(table, cfg, salt) if source.kind == "hash" else resolve(table, source)
                   for source in cfg.anonymous_id], n)
    denied = _denied(table, cfg.consent) if n else None
    null = pa.scalar(None, pa.string())
    if denied is None:
        consent = pa.nulls(n, pa.string())
    else:
        consent = pc.if_else(denied, pa.scalar("denied"), null)
        user = pc.if_else(denied, null, user)
        anon = pc.if_else(denied, null, anon)
    for name, values in (("user_id", user), ("anonymous_id", anon), ("consent", consent)):
        if name in table.column_names:
            i = table.column_names.index(name)
            table = table.set_column(i, pa.field(name, pa.string()), values)
        else:
            table = table.append_column(pa.field(name, pa.string()), values)
    if cfg.consent.mode == "drop" and denied is not None:
        table = table.filter(pc.invert(denied))
    return table
