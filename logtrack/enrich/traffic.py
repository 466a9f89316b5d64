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

import pyarrow as pa
import pyarrow.compute as pc

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

    Only rows whose query contains one of the names are searched; decoding runs once per
    distinct value (`+` is a space, as browsers encode forms).
    """
    query = _array(query).cast(pa.string())
    n = len(query)
    out = {name: pa.nulls(n, pa.string()) for name in names}
    if n == 0 or not names:
        return out
    mention = pc.fill_null(pc.match_substring_regex(query, "|".join(names)), False)
    if not pc.any(mention).as_py():
        return out
    subset = pc.filter(query, mention)
    for name in names:
        pattern = rf"(?:^|&){name}=(?P<v>[^&#]*)"
        raw = pc.struct_field(pc.extract_regex(subset, pattern), [0])
        decoded = decode_distinct(raw)
        out[name] = pc.replace_with_mask(out[name], mention, decoded)
    return out


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


def referer_host(referer: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Lower-case host of an absolute referrer URL (no port, no userinfo); null for `-` and junk."""

    def hosts(distinct: pa.Array) -> pa.Array:
        host = pc.struct_field(pc.extract_regex(distinct, _REFERER_HOST), [0])
        host = pc.utf8_rtrim(pc.utf8_lower(host), ".")
        return pc.if_else(pc.equal(host, ""), pa.scalar(None, pa.string()), host)

    return per_distinct(_array(referer).cast(pa.string()), hosts)


def _bare(host: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(pc.utf8_lower(host), r"^www\.", "")


def channel(
    utm: dict[str, pa.Array],
    click_kind: pa.Array,
    ref_host: pa.Array,
    request_host: pa.Array,
    internal_hosts: tuple[str, ...] = (),
) -> pa.Array:
    """The channel of each request (see the module docstring for the rules, in order)."""
    n = len(ref_host)
    medium = pc.utf8_lower(utm["utm_medium"])
    source = pc.utf8_lower(utm["utm_source"])

    def match(arr: pa.Array, pattern: str) -> pa.Array:
        return pc.fill_null(per_distinct(arr, lambda d: pc.match_substring_regex(d, pattern)), False)

    any_utm = pc.is_valid(utm["utm_source"])
    for name in ("utm_medium", "utm_campaign"):
        any_utm = pc.or_(any_utm, pc.is_valid(utm[name]))
    social_source = match(source, _SOCIAL)
    same_host = pc.fill_null(pc.equal(_bare(ref_host), _bare(request_host)), False)
    if internal_hosts:
        same_host = pc.or_(same_host, pc.fill_null(pc.is_in(_bare(ref_host), pa.array(
            [h.lower().removeprefix("www.") for h in internal_hosts])), False))
    # Highest precedence last: each rule overwrites the ones below it.
    rules: list[tuple[pa.Array, str]] = [
        (match(ref_host, SOCIAL_HOSTS), "social"),
        (match(ref_host, SEARCH_HOSTS), "organic_search"),
        (match(ref_host, EMAIL_HOSTS), "email"),
        (same_host, "internal"),
        (pc.is_null(ref_host), "direct"),
        (pc.fill_null(pc.is_in(click_kind, pa.array(SOCIAL_CLICK_IDS)), False), "social"),
        (pc.fill_null(pc.is_in(click_kind, pa.array(PAID_SEARCH_CLICK_IDS)), False), "paid_search"),
        (any_utm, "campaign"),
        (match(medium, r"^referral$"), "referral"),
        (match(medium, r"^organic$"), "organic_search"),
        (match(medium, _SOCIAL), "social"),
        (match(medium, _PAID_SEARCH_MEDIUM), "paid_search"),
        (pc.and_(match(medium, _PAID_MEDIUM), social_source), "social"),
        (pc.or_(match(medium, _EMAIL_MEDIUM), match(source, _EMAIL_MEDIUM)), "email"),
    ]
    result = pa.repeat(pa.scalar("referral"), n)
    for mask, name in rules:
        result = pc.if_else(mask, pa.scalar(name), result)
    return result


def click_ids(query: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, pa.Array]:
    """(click_id value, click id kind) from the first ad click id parameter found in each query."""
    values = query_params(query, CLICK_IDS)
    n = len(query)
    value = pa.nulls(n, pa.string())
    kind = pa.nulls(n, pa.string())
    for name in reversed(CLICK_IDS):  # earlier names win
        present = pc.is_valid(values[name])
        value = pc.if_else(present, values[name], value)
        kind = pc.if_else(present, pa.scalar(name), kind)
    return value, kind


def language(accept_language: pa.Array) -> pa.Array:
    """The first language tag of an Accept-Language header (`en-US,en;q=0.9` → `en-US`)."""
    tag = pc.struct_field(
        pc.extract_regex(accept_language, r"^\s*(?P<l>[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)"), [0])
    return tag


def _array(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    return col
