"""`--trusted-proxies`: take the client address from X-Forwarded-For behind load balancers.

The client is the right-most address of `X-Forwarded-For` + the connecting address that is not
a trusted proxy (DESIGN §2). Computed once per distinct (header, address) pair.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from .errors import UsageError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
XFF_KEYS = ("http_x_forwarded_for", "x-forwarded-for", "x_forwarded_for")


def parse_cidrs(specs: Iterable[str]) -> list[Network]:
    """Parse `10.0.0.0/8,192.168.1.1` style lists; a bad entry is a UsageError."""
    nets: list[Network] = []
    for spec in specs:
        for part in str(spec).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise UsageError(f"--trusted-proxies: not an address or CIDR: {part!r}") from exc
    return nets


def _trusted(addr: str, nets: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in nets)


def client_from_chain(xff: str | None, peer: str | None, nets: list[Network]) -> str | None:
    """The right-most address of `xff` + `peer` that is not trusted (the left-most if all are)."""
    chain = [a.strip() for a in (xff or "").split(",") if a.strip() and a.strip() != "-"]
    if peer:
        chain.append(peer)
    for addr in reversed(chain):
        if not _trusted(addr, nets):
            return addr
    return chain[0] if chain else peer


def apply_trusted_proxies(requests: pa.Table, nets: list[Network]) -> pa.Table:
    """Replace `client_ip` by the first untrusted address walking X-Forwarded-For leftwards."""
    if not nets or requests.num_rows == 0:
        return requests
    xff = None
    for key in XFF_KEYS:
        values = pc.map_lookup(requests["fields"], pa.scalar(key), "first")
        xff = values if xff is None else pc.coalesce(xff, values)
    pairs = pc.binary_join_element_wise(pc.fill_null(xff, ""), pc.fill_null(requests["client_ip"], ""), "\x00")
    enc = pc.dictionary_encode(pairs)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    resolved = []
    for pair in enc.dictionary.to_pylist():
        header, _, peer = pair.partition("\x00")
        resolved.append(client_from_chain(header or None, peer or None, nets))
    client = pa.array(resolved, pa.string()).take(enc.indices)
    return requests.set_column(requests.schema.get_field_index("client_ip"), "client_ip", client)
