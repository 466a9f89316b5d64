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
from collections.abc import Callable
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
from .hashing import HashCache, keyed_hashes
from .privacy import parse_ip_truncate, truncation
from .schema import REQUESTS

SOURCE_KINDS = ("field", "cookie", "query", "header", "path")
ABSENT = ("", "-", "REDACTED")
SALT_FILE = "salt"
_IDENTITY_KEYS = {"user_id", "anonymous_id", "salt_env", "rotate", "ip_truncate", "hash_emails"}


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
    # Keyed hashes computed so far (per salt), so recurring visitors are hashed once per run.
    hashes: HashCache = field(default_factory=lambda: HashCache(), init=False, compare=False, repr=False)

    @classmethod
    def from_config(cls, config: Config) -> IdentityConfig:
        """Read and validate the `identity` and `consent` sections (ConfigError with file:line)."""
        sec = config.section("identity")
        for key in sec:
            if key not in _IDENTITY_KEYS:
                raise config.error(("identity", key), f"unknown key {key!r} (known: {', '.join(sorted(_IDENTITY_KEYS))})")
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


def _with_null_slot(values: pa.Array) -> pa.Array:
    return pa.concat_arrays([values.cast(pa.string()), pa.nulls(1, pa.string())])


def _known_digests(keys: pa.Array, table: hashing.DigestTable, salt: bytes, person: bytes,
                   texts: Callable[[np.ndarray], list[str]]) -> pa.Array:
    """The digest of each key: from the table, else hashing `texts(positions of the new keys)`."""
    hashes = table.hashes(keys.to_pylist())
    found = table.find(keys, hashes)
    if found.null_count == 0:
        return found
    missing = np.flatnonzero(found.is_null().to_numpy(zero_copy_only=False))
    key = hashing.salt_key(salt)
    done: dict[str, str] = {}  # two keys of a batch can share a text (two IPs of one /24)
    new = pa.array([done[t] if t in done else done.setdefault(t, hashing.digest(t, key, person))
                    for t in texts(missing)], pa.string())
    table.add(keys.take(pa.array(missing)), hashes[missing], new)
    return pc.replace_with_mask(found, found.is_null(), new)


def anonymous_hash(table: pa.Table, cfg: IdentityConfig, salt: bytes) -> pa.Array:
    """Keyed hash of truncated IP + user agent (+ UTC date when rotate: daily), once per distinct pair.

    Null when both the IP and the user agent are missing. Works on integer codes: the distinct
    combinations are found without building a string per row. Hashes are remembered across
    batches (`cfg.hashes`, see hashing.py) under a short key — the truncated IP and a number
    standing for the user agent — so a recurring visitor costs a vectorized lookup, not a hash.
    """
    n = table.num_rows
    if n == 0:
        return pa.array([], pa.string())
    ips = truncation(_column(table, "client_ip"), cfg.ipv4_prefix, cfg.ipv6_prefix)
    uas = encoding.encode(_column(table, "user_agent"))
    ua_text = _clean(uas.dictionary)
    ua_list = pc.fill_null(ua_text, "").to_pylist() + [""]  # + the slot of null user agents
    parts = [hashing.codes(ips.encoded), hashing.codes(uas)]
    days = None
    if cfg.rotate == "daily":
        days = pc.dictionary_encode(pc.cast(_column(table, "ts"), pa.date32()))
        parts.append(hashing.codes(days))
    row, combos = hashing.combinations(parts)
    # Key of a combination: truncated IP, a run-wide number for the user agent[, date].
    ip_text = pc.fill_null(pc.take(_with_null_slot(ips.truncated), pa.array(combos[0])), "")
    ua_ids = np.asarray(cfg.hashes.ids(ua_list), dtype=np.int64)
    key_parts = [ip_text, pa.array(ua_ids[combos[1]]).cast(pa.string())]
    if days is not None:  # a null date gives a null key, so a null hash
        key_parts.append(pc.take(_with_null_slot(days.dictionary), pa.array(combos[2])))
    keys = pc.binary_join_element_wise(*key_parts, "\x1f")
    ip_absent = np.append(pc.is_null(ips.truncated).to_numpy(zero_copy_only=False), True)[combos[0]]
    ua_absent = np.append(pc.is_null(ua_text).to_numpy(zero_copy_only=False), True)[combos[1]]
    valid = np.flatnonzero(~(ip_absent & ua_absent) & keys.is_valid().to_numpy(zero_copy_only=False))
    keys = keys.take(pa.array(valid))

    def texts(missing: np.ndarray) -> list[str]:  # the hashed texts of keys not seen before
        at = pa.array(valid[missing])
        cols = [ip_text.take(at).to_pylist(), [ua_list[u] for u in combos[1][valid[missing]].tolist()]]
        if days is not None:
            cols.append(key_parts[2].take(at).to_pylist())
        return ["\x1f".join(f) for f in zip(*cols, strict=True)]

    found = _known_digests(keys, cfg.hashes.digest_table(salt, b"logtrack-anon"), salt, b"logtrack-anon", texts)
    where = np.full(len(combos[0]), len(valid), dtype=np.int64)
    where[valid] = np.arange(len(valid))
    per_combo = pc.take(pa.concat_arrays([found, pa.nulls(1, pa.string())]), pa.array(where))
    return pc.take(per_combo, pa.array(row))


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


def _hash_emails(user: pa.Array, salt: bytes, cache: HashCache) -> pa.Array:
    """An email user id becomes `h:<keyed hash>` (per distinct value)."""
    if user.null_count == len(user):
        return user
    encoded = pc.dictionary_encode(user)
    distinct = encoded.dictionary
    email = pc.match_substring_regex(distinct, r"@|%40", ignore_case=True)
    if not pc.any(email).as_py():
        return user
    hashed = keyed_hashes(pc.filter(distinct, email), salt, b"logtrack-user", cache)
    distinct = pc.replace_with_mask(distinct, email, pc.binary_join_element_wise("h:", hashed, ""))
    return pc.take(distinct, encoded.indices)


def identify(table: pa.Table, cfg: IdentityConfig, salt: bytes) -> pa.Table:
    """Add (or replace) `user_id`, `anonymous_id` and `consent` on a requests table.

    user_id: the first non-empty configured source (an email is replaced by `h:<keyed hash>`
    unless hash_emails is false). anonymous_id: the first non-empty source, `hash` being the
    keyed hash above. Opt-out rows get consent "denied" and no ids (mode anonymize) or are
    removed (mode drop).
    """
    n = table.num_rows
    user = _first([resolve(table, source) for source in cfg.user_id], n)
    if cfg.hash_emails and n:
        user = _hash_emails(user, salt, cfg.hashes)
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
