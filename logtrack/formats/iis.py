"""`iis`: Microsoft IIS W3C logs (and IIS Advanced Logging), from their `#Fields:` header.

IIS writes `time-taken` in milliseconds, spaces in text fields as `+`, and a new header block
after every restart; Advanced Logging quotes some values and uses `date-local`/`time-local`
(no zone is logged: read as UTC) and `TimeTakenMS`.
"""

from __future__ import annotations

from .base import register
from .w3c_core import Layout, W3CFormat
from .w3c_fields import Decoding

# Fields only IIS writes: a layout without an IIS `#Software:` directive still qualifies by them.
_IIS_FIELDS = {"s-sitename", "s-computername", "sc-substatus", "sc-win32-status", "timetakenms"}


def accepts(layout: Layout) -> str | None:
    """None for an IIS layout, else why the lines are not IIS's."""
    if layout.is_iis or _IIS_FIELDS & {f.lower() for f in layout.fields}:
        return None
    return f"the #Fields: header at line {layout.line} is not an IIS layout (no IIS #Software: or IIS field)"


FORMAT = register(W3CFormat(
    "iis",
    "Microsoft IIS W3C extended log (#Fields: header; time-taken in ms; IIS Advanced Logging too)",
    time_taken="ms",
    decoding=Decoding(user_agent="plus", cookie="plus"),
    accepts=accepts,
))
