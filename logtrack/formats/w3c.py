"""`w3c`: the generic W3C extended log, read through its `#Fields:` header (DESIGN §3).

For NetScaler, Shoutcast, Incapsula and any other product that writes W3C extended logs;
`time-taken` is in seconds as the W3C draft defines it, except under an IIS `#Software:`
directive (milliseconds).
"""

from __future__ import annotations

from .base import register
from .w3c_core import W3CFormat
from .w3c_fields import Decoding

FORMAT = register(W3CFormat(
    "w3c",
    "W3C extended log with a #Fields: header (NetScaler, Shoutcast, Incapsula, any product)",
    time_taken="auto",
    decoding=Decoding(user_agent="plus"),
))
