"""`cloudfront`: Amazon CloudFront standard logs (web and RTMP), from their `#Fields:` header.

Web distributions write tab-separated fields with `time-taken` in seconds and URL-encode text
values (`%20`; old logs encoded user agents twice, `%2520`); the viewer's Host is
`x-host-header` (`cs(Host)` is the distribution's domain). RTMP logs have no method or status:
those rows keep nulls (DESIGN §2), the stream URL gives scheme, host and path.
"""

from __future__ import annotations

from .base import register
from .w3c_core import Layout, W3CFormat
from .w3c_fields import Decoding


def accepts(layout: Layout) -> str | None:
    """None for a CloudFront layout (it has `x-edge-*` / `x-cf-*` fields), else why not."""
    if any(f.lower().startswith(("x-edge-", "x-cf-")) for f in layout.fields):
        return None
    return f"the #Fields: header at line {layout.line} is not a CloudFront layout (no x-edge-* field)"


FORMAT = register(W3CFormat(
    "cloudfront",
    "Amazon CloudFront standard log, web or RTMP (tab/space separated, #Fields: header)",
    time_taken="s",
    decoding=Decoding(user_agent="percent", twice=True, referer="percent", cookie="percent"),
    accepts=accepts,
))
