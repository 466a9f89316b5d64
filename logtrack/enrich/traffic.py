"""Where traffic came from: UTM parameters, ad click ids, referrer host, channel, language.

All vectorized with pyarrow (RE2). Query parameters are only searched in the rows whose query
mentions them at all (most do not), and percent-decoding runs once per distinct extracted value.

Channel (first rule that applies wins; DESIGN §2's channel names):
1. UTM tags: `utm_medium` email/newsletter → email; cpc/ppc/paid search/sem → paid_search (a paid
   medium from a social source → social); social/sm → social; organic → organic_search;
   referral → referral; any other UTM tag → campaign.
2. Ad click ids: gclid/gbraid/wbraid/dclid/msclkid → paid_search; fbclid/ttclid/twclid → social.
3. No referrer → direct. Referrer host equal to the request host (ignoring a leading `www.`) or
   one of the configured internal hosts → internal.
4. Referrer host: webmail → email; search engine → organic_search; social network → social;
   anything else → referral.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_plus

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import encoding

UTM_PARAMS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
PAID_SEARCH_CLICK_IDS = ("gclid", "gbraid", "wbraid", "dclid", "msclkid")
SOCIAL_CLICK_IDS = ("fbclid", "ttclid", "twclid")
CLICK_IDS = PAID_SEARCH_CLICK_IDS + SOCIAL_CLICK_IDS

_REFERER_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(?P<host>\[[^\]/]*\]|[^:/?#\[\]]+)"
_TLD = r"(?:\.[a-z]{2,3}){1,2}"
SEARCH_HOSTS = (
    rf"(?:^|\.)(?:google{_TLD}|bing\.com|duckduckgo\.com|yahoo{_TLD}|yandex{_TLD}|ya\.ru|baidu\.com"
    r"|ecosia\.org|qwant\.com|startpage\.com|search\.brave\.com|kagi\.com|naver\.com|seznam\.cz"
    r"|ask\.com|sogou\.com|so\.com|daum\.net)$|^com\.google\.android\.googlequicksearchbox$"
)
SOCIAL_HOSTS = (
    r"(?:^|\.)(?:facebook\.com|fb\.com|fb\.me|instagram\.com|t\.co|twitter\.com|x\.com|linkedin\.com"
    r"|lnkd\.in|pinterest(?:\.[a-z]{2,3}){1,2}|reddit\.com|youtube\.com|youtu\.be|tiktok\.com"
    r"|snapchat\.com|tumblr\.com|vk\.com|ok\.ru|weibo\.com|threads\.net|bsky\.app|mastodon\.social"
    r"|news\.ycombinator\.com|quora\.com|whatsapp\.com|t\.me|discord\.com|telegram\.org)$"
    r"|^com\.(?:facebook|linkedin|twitter|instagram|reddit|pinterest|zhiliaoapp)\."
)
EMAIL_HOSTS = (
    r"^(?:mail|webmail|email)\.|^outlook\.(?:live|office|office365)\.com$|^com\.google\.android\.gm$"
)
_EMAIL_MEDIUM = r"^(?:e[-_ ]?mail|newsletter)$"
_PAID_SEARCH_MEDIUM = r"^(?:cpc|ppc|paid[-_ ]?search|paidsearch|sem)$"
_PAID_MEDIUM = r"^(?:paid.*|cpc|ppc|retargeting)$"
_SOCIAL = r"^(?:social|social[-_ ]?(?:network|media)|sm|paid[-_ ]?social|facebook|instagram|twitter|x|linkedin|tiktok|reddit|pinterest|youtube)$"


def query_params(query: pa.ChunkedArray | pa.Array, names: tuple[str, ...]) -> dict[str, pa.Array]:
    """The first value of each named parameter in raw query strings, percent-decoded (nulls when absent).

    Works on the distinct query strings, and only those that mention one of the names are
    searched; decoding runs once per distinct value (`+` is a space, as browsers encode forms).
    """
    query = encoding.single(query)
    n = len(query)
    out = {name: pa.nulls(n, pa.string()) for name in names}
    if n == 0 or not names or query.null_count == n:
        return out
    queries = encoding.encode(query)
    for name, values in _distinct_params(queries.dictionary, names).items():
        out[name] = pc.take(values, queries.indices)
    return out


def _distinct_params(distinct: pa.Array, names: tuple[str, ...]) -> dict[str, pa.Array]:
    """`query_params` over distinct strings: aligned arrays, only for the names found at all."""
    mention = pc.match_substring_regex(distinct, "|".join(names))
    if not pc.any(mention).as_py():
        return {}
    subset = pc.filter(distinct, mention)
    found = {}
    for name, values in _subset_params(subset, names).items():
        found[name] = pc.replace_with_mask(pa.nulls(len(distinct), pa.string()), mention, values)
    return found


def _subset_params(subset: pa.Array, names: tuple[str, ...]) -> dict[str, pa.Array]:
    found = {}
    for name in names:
        raw = pc.struct_field(pc.extract_regex(subset, rf"(?:^|&){name}=(?P<v>[^&#]*)"), [0])
        if raw.null_count < len(raw):
            found[name] = decode_distinct(raw)
    return found


def decode_distinct(raw: pa.Array) -> pa.Array:
    """Percent-decode (`+` as space) once per distinct value; empty strings become null."""
    encoded = pc.dictionary_encode(raw)
    decoded = [unquote_plus(v) or None for v in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(decoded, pa.string()), encoded.indices)


def per_distinct(arr: pa.Array, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """Apply `fn` to the distinct values only, then spread the results back (referrers and
    their hosts repeat a lot: regexes then run a fraction of the rows)."""
    encoded = pc.dictionary_encode(arr)
    return pc.take(fn(encoded.dictionary), encoded.indices)


def _hosts(distinct: pa.Array) -> pa.Array:
    host = pc.struct_field(pc.extract_regex(distinct, _REFERER_HOST), [0])
    host = pc.utf8_rtrim(pc.utf8_lower(host), ".")
    return pc.if_else(pc.equal(host, ""), pa.scalar(None, pa.string()), host)


def referer_host(referer: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Lower-case host of an absolute referrer URL (no port, no userinfo); null for `-` and junk."""
    return per_distinct(_array(referer).cast(pa.string()), _hosts)


def _bare(host: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(pc.utf8_lower(host), r"^www\.", "")


def _matches(arr: pa.Array, pattern: str) -> pa.Array:
    return pc.fill_null(pc.match_substring_regex(arr, pattern), False)


_QUERY_NAMES = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "click_id")


def _query_parts(query: pa.ChunkedArray | pa.Array
                 ) -> tuple[dict[str, pa.Array], pa.Array | None, encoding.SparseRows | None]:
    """(utm_* and click_id per row, the channel of each distinct query that mentions a
    parameter, the rows' positions among those queries); the last two None when none does."""
    query = encoding.single(query)
    n = len(query)
    out = {name: pa.nulls(n, pa.string()) for name in _QUERY_NAMES}
    if n == 0 or query.null_count == n:
        return out, None, None
    queries = encoding.encode(query)
    distinct = queries.dictionary
    mention = pc.match_substring_regex(distinct, "|".join(UTM_PARAMS + CLICK_IDS))
    if not pc.any(mention).as_py():
        return out, None, None
    # Row → position among the distinct queries that mention a parameter (-1 for the others).
    mentioned = mention.to_numpy(zero_copy_only=False)
    position = np.append(np.where(mentioned, np.cumsum(mentioned) - 1, -1), -1)  # + null queries
    rows = encoding.SparseRows(position[encoding.codes(queries.indices)])
    cols = _query_subset(pc.filter(distinct, mention))
    channel = cols.pop("query_channel")
    for name, values in cols.items():
        out[name] = rows.spread(values)  # most rows have no campaign: no full take
    return out, channel, rows


def _split_params(subset: pa.Array, names: tuple[str, ...]) -> dict[str, pa.Array]:
    """`_subset_params` for plain names (no regex characters) in a few calls whatever the number
    of names: split each query into `key=value` pairs, keep the first pair of each name."""
    m = len(subset)
    pairs = pc.split_pattern(subset, "&")
    kv = pc.extract_regex(pc.list_flatten(pairs), r"^(?P<k>[^=]*)=(?P<v>[^#]*)")
    code = pc.index_in(pc.struct_field(kv, [0]), value_set=pa.array(names, pa.string()))
    wanted = pc.is_valid(code)
    if not pc.any(wanted).as_py():
        return {}
    codes = pc.filter(code, wanted).to_numpy().astype(np.int64)
    parents = pc.filter(pc.list_parent_indices(pairs), wanted).to_numpy().astype(np.int64)
    # Name-major keys; np.unique's first index is the first pair of each (name, query).
    keys, first = np.unique(codes * m + parents, return_index=True)
    values = decode_distinct(pc.take(pc.filter(pc.struct_field(kv, [1]), wanted), pa.array(first)))
    where = np.full(len(names) * m, len(values), dtype=np.int64)
    where[keys] = np.arange(len(values))
    spread = pc.take(pa.concat_arrays([values, pa.nulls(1, pa.string())]), pa.array(where))
    return {names[c]: spread.slice(c * m, m) for c in np.unique(codes).tolist()}


def _query_subset(subset: pa.Array) -> dict[str, pa.Array]:
    m = len(subset)
    params = {k: v for k, v in _split_params(subset, UTM_PARAMS + CLICK_IDS).items() if v.null_count < m}
    null = pa.nulls(m, pa.string())
    cols = {name: params.get(name, null) for name in UTM_PARAMS}
    value, kind = null, null
    for name in reversed(CLICK_IDS):  # earlier names win
        if name in params:
            present = pc.is_valid(params[name])
            value = pc.if_else(present, params[name], value)
            kind = pc.if_else(present, pa.scalar(name), kind)
    cols["click_id"] = value
    medium, source = pc.utf8_lower(cols["utm_medium"]), pc.utf8_lower(cols["utm_source"])
    any_utm = pc.or_(pc.or_(pc.is_valid(cols["utm_source"]), pc.is_valid(cols["utm_medium"])),
                     pc.is_valid(cols["utm_campaign"]))
    # Highest precedence last, as in the module docstring (rules 1–2 only; referrers decide otherwise).
    rules: list[tuple[pa.Array, str]] = [
        (pc.fill_null(pc.is_in(kind, pa.array(SOCIAL_CLICK_IDS)), False), "social"),
        (pc.fill_null(pc.is_in(kind, pa.array(PAID_SEARCH_CLICK_IDS)), False), "paid_search"),
        (any_utm, "campaign"),
        (_matches(medium, r"^referral$"), "referral"),
        (_matches(medium, r"^organic$"), "organic_search"),
        (_matches(medium, _SOCIAL), "social"),
        (_matches(medium, _PAID_SEARCH_MEDIUM), "paid_search"),
        (pc.and_(_matches(medium, _PAID_MEDIUM), _matches(source, _SOCIAL)), "social"),
        (pc.or_(_matches(medium, _EMAIL_MEDIUM), _matches(source, _EMAIL_MEDIUM)), "email"),
    ]
    channel = null
    for mask, name in rules:
        channel = pc.if_else(mask, pa.scalar(name), channel)
    cols["query_channel"] = channel
    return cols


def traffic_columns(query: pa.ChunkedArray | pa.Array, referer: pa.ChunkedArray | pa.Array,
                    request_host: pa.ChunkedArray | pa.Array, internal_hosts: tuple[str, ...] = ()
                    ) -> dict[str, pa.Array]:
    """utm_*, click_id, referer_host and channel of each request.

    Query parameters are computed on the distinct queries that mention one, referrer hosts and
    their classes per distinct referrer, internal traffic per distinct (referrer, request host)
    pair. The channel is one take from the referrer kinds and the query channels side by side:
    a row points at its query's channel when it has one (rules 1–2 of the module docstring come
    first), else at its referrer's kind (rules 3–4)."""
    out, channel, rows = _query_parts(query)
    out["referer_host"], kinds, slot = _referer_parts(referer, request_host, internal_hosts)
    if rows is not None and channel.null_count < len(channel):
        decides = channel.is_valid().to_numpy(zero_copy_only=False)[rows.local]
        slot = slot.copy()  # rows whose query decides point past the referrer kinds
        slot[rows.rows[decides]] = len(kinds) + rows.local[decides]
        kinds = pa.concat_arrays([kinds, channel])
    out["channel"] = pc.take(kinds, pa.array(slot))
    return out


def _referer_parts(referer: pa.ChunkedArray | pa.Array, request_host: pa.ChunkedArray | pa.Array,
                   internal_hosts: tuple[str, ...]) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """(referer_host per row, the distinct channels referrers decide, each row's slot in them:
    int64 numpy)."""
    referer = encoding.single(referer)
    n = len(referer)
    direct = pa.array(["direct"], pa.string())
    if n == 0:
        return pa.array([], pa.string()), direct, np.zeros(0, np.int64)
    if referer.null_count == n:
        return pa.nulls(n, pa.string()), direct, np.zeros(n, np.int64)
    refs = encoding.encode(referer)
    hosts = _hosts(refs.dictionary)
    kind = pa.repeat(pa.scalar("referral"), len(hosts))
    for pattern, name in ((SOCIAL_HOSTS, "social"), (SEARCH_HOSTS, "organic_search"), (EMAIL_HOSTS, "email")):
        kind = pc.if_else(_matches(hosts, pattern), pa.scalar(name), kind)
    bare = _bare(hosts)
    if internal_hosts:
        internal = pc.fill_null(pc.is_in(bare, pa.array([h.lower().removeprefix("www.") for h in internal_hosts])),
                                False)
        kind = pc.if_else(internal, pa.scalar("internal"), kind)
    kind = pc.if_else(pc.is_null(hosts), pa.scalar("direct"), kind)
    ref_code = encoding.codes(refs.indices)  # -1: no referrer
    ref_host = encoding.spread(hosts, ref_code)
    request_host = encoding.single(request_host)
    if request_host.null_count == len(request_host):
        # No request host to compare with (most access log formats): no row is internal by it;
        # rows without a referrer point at the "direct" slot appended last.
        return ref_host, pa.concat_arrays([kind, direct]), np.where(ref_code < 0, len(kind), ref_code)
    # Internal traffic is decided per distinct (referrer, request host) pair, not per row.
    req = encoding.encode(request_host)
    pair_ref, pair_req, slot = encoding.pairs(ref_code, len(hosts), encoding.codes(req.indices), len(req.dictionary))
    pair_ref[pair_ref < 0] = len(hosts)  # the null slot appended below
    pair_req[pair_req < 0] = len(req.dictionary)
    ref_bare = pc.take(pa.concat_arrays([bare, pa.nulls(1, pa.string())]), pa.array(pair_ref))
    req_bare = pc.take(pa.concat_arrays([_bare(req.dictionary), pa.nulls(1, pa.string())]), pa.array(pair_req))
    pair_kind = pc.fill_null(pc.take(pa.concat_arrays([kind, pa.nulls(1, pa.string())]), pa.array(pair_ref)), "direct")
    same = pc.fill_null(pc.equal(ref_bare, req_bare), False)
    pair_kind = pc.if_else(pc.and_(same, pc.not_equal(pair_kind, "direct")), pa.scalar("internal"), pair_kind)
    return ref_host, pair_kind, slot


def language(accept_language: pa.Array) -> pa.Array:
    """The first language tag of an Accept-Language header (`en-US,en;q=0.9` → `en-US`)."""
    tag = pc.struct_field(
        pc.extract_regex(accept_language, r"^\s*(?P<l>[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)"), [0])
    return tag


def _array(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    return encoding.single(col)
