"""`s3`: Amazon S3 server access logs (DESIGN §2, §3).

`bucket_owner bucket [time] remote_ip requester request_id operation key "request_uri"
http_status error_code bytes_sent object_size total_time turn_around_time "referer"
"user_agent" version_id host_id signature_version cipher_suite auth_type host_header
tls_version access_point_arn acl_required` — S3 has added fields at the end over the years;
lines ending at `"user_agent"` and any number of later fields are accepted.

Columns: `remote_user` is the requester (IAM identity, `-` when anonymous), `request_time_ms`
is `total_time` (milliseconds), `host` is `host_header`, or, for website-endpoint operations
(`WEBSITE.*`) without one, the bucket (a website bucket is named after its host). The rest is
kept in `fields` under the names above.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from . import convert as cv
from .base import register
from .delimited import Delimited, DelimitedFormat
from .variables import Var

SPEC = (
    "bucket_owner bucket [time] remote_ip requester request_id operation key"
    ' "request_uri" http_status error_code bytes_sent object_size total_time turn_around_time'
    ' "referer" "user_agent" version_id host_id signature_version cipher_suite auth_type'
    " host_header tls_version access_point_arn acl_required"
)
_FIELDS = (
    "bucket_owner", "bucket", "operation", "key", "error_code", "object_size", "turn_around_time",
    "version_id", "host_id", "signature_version", "cipher_suite", "auth_type", "tls_version",
    "access_point_arn", "acl_required",
)
VARIABLES = [
    Var("time", "time_clf", "ts"),
    Var("remote_ip", "ip", "client_ip"),
    Var("requester", "str", "remote_user"),
    Var("request_id", "str", "request_id"),
    Var("request_uri", "request", None),
    Var("http_status", "status", "status"),
    Var("bytes_sent", "int", "bytes_sent"),
    Var("total_time", "dur_ms", "request_time_ms"),
    Var("referer", "text", "referer"),
    Var("user_agent", "text", "user_agent"),
    *(Var(name, "str", None) for name in _FIELDS),
]


def derive(raw: dict[str, pa.Array]) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """The host: the Host header, else the bucket for website-endpoint requests."""
    website = pc.fill_null(pc.starts_with(raw["operation"], "WEBSITE."), False)
    bucket = cv.set_null(raw["bucket"], pc.invert(website))
    return {"host": cv.first_of(cv.host_only(raw["host_header"]), cv.host_only(bucket))}, {}


FORMAT = register(DelimitedFormat(
    "s3",
    "Amazon S3 server access log (bucket_owner bucket [time] remote_ip … \"request_uri\" …)",
    Delimited(SPEC, required="user_agent"),
    VARIABLES,
    derive,
))
