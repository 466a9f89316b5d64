"""Static assets and page-like paths, from the path's extension and the response content type.

`is_static` flags what a browser fetches to render a page (styles, scripts, images, fonts, media,
downloads: GoAccess's static-file list plus modern formats). When the log has the response
content type (`fields['sent_http_content_type']`, nginx naming), the content type decides:
HTML/JSON responses are never static even at `/page.js`, and an image served from `/avatar/42` is.

`is_page_path` is the "text/page-like path" of a pageview (DESIGN §5 builtins): anything but a
static or data extension (`.json`, `.xml`, feeds…), so `/about`, `/index.php` and
`/users/jane.doe` are pages and `/api/cart.json` is not. `pageview_rows` is the rest of the
pageview definition, the one place sessions, rules and reports take it from.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import encoding

STATIC_EXTENSIONS = (
    "css", "js", "mjs", "map", "jpg", "jpeg", "png", "gif", "ico", "svg", "webp", "avif", "bmp",
    "tif", "tiff", "woff", "woff2", "ttf", "otf", "eot", "mp3", "mp4", "m4a", "m4v", "ogg", "ogv",
    "webm", "wav", "flac", "avi", "mov", "mpg", "mpeg", "flv", "swf", "pdf", "csv", "txt", "xls",
    "xlsx", "doc", "docx", "ppt", "pptx", "zip", "gz", "tgz", "tar", "rar", "7z", "exe", "dmg",
    "iso", "apk", "wasm", "webmanifest",
)
DATA_EXTENSIONS = (
    "json", "xml", "rss", "atom", "rdf", "yaml", "yml", "ics", "vcf", "gpx", "kml", "bin", "dat",
    "sig", "asc", "sha256", "md5", "jsonld", "geojson", "ndjson", "proto", "pb",
)
# Response content type keys, in order of preference (nginx `$sent_http_content_type`, Apache
# `%{Content-Type}o`, JSON formats' own names).
CONTENT_TYPE_FIELDS = ("sent_http_content_type", "content_type", "resp_content_type")
_STATIC_TYPES = r"^\s*(?:image|font|audio|video)/|^\s*(?:text/css|(?:text|application)/(?:x-)?javascript|application/(?:font|wasm|pdf|zip|octet-stream))"
_PAGE_TYPES = r"^\s*(?:text/html|application/xhtml|application/json|text/plain|application/xml|text/xml)"
# The last segment's extension (a `;jsessionid=…` matrix parameter after it is ignored).
_EXTENSION = r"\.(?P<ext>[A-Za-z0-9]{1,12})(?:;[^/]*)?$"


def extension(path: pa.Array) -> pa.Array:
    """Lower-case extension of the path's last segment (`/a/b.min.JS` → `js`), null when none."""
    return pc.utf8_lower(pc.struct_field(pc.extract_regex(path, _EXTENSION), [0]))


def content_type(fields: pa.Array) -> pa.Array:
    """The response content type from `fields`, when the format logged one."""
    found = pa.nulls(len(fields), pa.string())
    if len(fields) == 0 or fields.null_count == len(fields):
        return found
    for key in reversed(CONTENT_TYPE_FIELDS):  # the first key wins
        value = pc.map_lookup(fields, key, "first")
        found = pc.if_else(pc.is_valid(value), value, found)
    return found


@lru_cache(maxsize=16)
def _value_set(values: tuple[str, ...]) -> pa.Array:
    return pa.array(list(values), pa.string())


def is_static(path: pa.Array, fields: pa.Array, extensions: tuple[str, ...] = STATIC_EXTENSIONS) -> pa.Array:
    """True for static assets: by content type when logged, else by extension. Never null.

    The extension is read once per distinct path; content types only when the log has them.
    """
    path = encoding.single(path)
    if len(path) == 0:
        return pa.array([], pa.bool_())
    paths = encoding.encode(path)
    static_ext = pc.fill_null(pc.is_in(extension(paths.dictionary), _value_set(tuple(extensions))), False)
    by_ext = encoding.spread(static_ext, paths.indices)
    if by_ext.null_count:
        by_ext = pc.fill_null(by_ext, False)
    if not encoding.field_keys(fields).intersection(CONTENT_TYPE_FIELDS):
        return by_ext
    ctype = content_type(encoding.single(fields))
    static_type = pc.fill_null(pc.match_substring_regex(ctype, _STATIC_TYPES, ignore_case=True), False)
    page_type = pc.fill_null(pc.match_substring_regex(ctype, _PAGE_TYPES, ignore_case=True), False)
    decided = pc.or_(static_type, page_type)
    return pc.if_else(decided, static_type, by_ext)


def is_page_path(path: pa.Array) -> pa.Array:
    """True when a path looks like a page (not a static or data extension, not an API endpoint).

    Null path → False. JSON API calls (`/api/v1/products?category=…`, `/graphql`) are XHRs of a
    page or an app's traffic, not pages a person viewed. An API endpoint is a whole path segment
    (`/api/…`, `/shop/api/v2/…`, `/graphql`, WordPress `/wp-json/…`, `/xmlrpc.php`), any case;
    `/apiary` and `/rapid/` are pages.
    """
    api_path = r"(?:^|/)(?:api|graphql|wp-json|xmlrpc\.php)(?:[/;]|$)"
    not_pages = pa.array(list(STATIC_EXTENSIONS + DATA_EXTENSIONS), pa.string())
    data = pc.fill_null(pc.is_in(extension(path), not_pages), False)
    api = pc.fill_null(pc.match_substring_regex(path, api_path, ignore_case=True), False)
    return pc.and_(pc.is_valid(path), pc.invert(pc.or_(data, api)))


PAGEVIEW_METHODS = ("GET", "HEAD")


def pageview_rows(status: np.ndarray, method_ok: np.ndarray, is_bot: np.ndarray, is_static: np.ndarray) -> np.ndarray:
    """A pageview apart from its path (DESIGN §5): answered 2xx or 304, method in
    `PAGEVIEW_METHODS` (`method_ok`), not a bot, not a static asset. Numpy arrays whose nulls
    are already filled (a null status as 0, null flags as False); the page-like path test
    (`is_page_path`) is left to the caller, who runs it once per distinct path of these rows."""
    return (((status >= 200) & (status < 300)) | (status == 304)) & method_ok & ~is_bot & ~is_static
