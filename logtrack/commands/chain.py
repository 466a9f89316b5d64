"""Shared CLI plumbing for the commands that run the whole chain (sessions, events, report)."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from ..config import Config
from ..pipeline import RunStats, iter_parsed
from ..report.dataset import HEAD_BYTES, InputIdentity, run_key_for
from ..run import Chain, StageOutput
from ..sources import Input, expand_inputs
from ..state import state_dir
from . import common


def chain_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--keep-ip and --state, plus the log options."""
    func = click.option("--keep-ip", is_flag=True, help="Keep full client IPs in outputs (default: truncated).")(func)
    func = click.option("--state", "state_option", default=None, metavar="DIR",
                        help="State directory (salt, ledger); default $XDG_STATE_HOME/logtrack.")(func)
    return common.log_options(func)


class ChainRun:
    """One run of the chain over LOGS, with its config, inputs and stats."""

    def __init__(self, logs: tuple[str, ...], kw: dict[str, Any], rules: tuple[str, ...] | list[str] | None = None) -> None:
        self.kw = kw
        self.config: Config = common.load(kw)
        self.options = common.parse_options(self.config, kw)
        self.inputs: list[Input] = expand_inputs(list(logs))
        self.state = state_dir(kw.get("state_option") or self.config.get("state"))
        rules_paths = list(rules) if rules else list(self.config.get("rules") or [])
        self.rules_paths = rules_paths
        self.chain = Chain(self.config, self.state, keep_ip=bool(kw.get("keep_ip")), rules_paths=rules_paths or None)
        self.stats = RunStats()

    def outputs(self) -> Iterator[StageOutput]:
        """Stage outputs, batch by batch."""
        return self.chain.run(iter_parsed(self.inputs, self.options, self.stats))

    def finish(self) -> None:
        """Exit codes for read errors and the reject rate."""
        common.finish(self.stats, common.max_reject_rate(self.config, self.kw))


def run_key(inputs: list[Input]) -> str:
    """The dataset run key of these inputs; stdin is identified by its first line, peeked
    without consuming it, so re-sending the same stream replaces its earlier parts."""
    idents = []
    for inp in inputs:
        if inp.is_stdin:
            head = sys.stdin.buffer.peek(HEAD_BYTES)[:HEAD_BYTES] if hasattr(sys.stdin.buffer, "peek") else b""
            nl = head.find(b"\n")
            head = head[: nl + 1] if nl >= 0 else head
            idents.append(InputIdentity("<stdin>", 0, hashlib.blake2b(head, digest_size=16).hexdigest()))
        else:
            idents.append(InputIdentity.of(inp.path))
    return run_key_for(idents)


def out_dir(path: str) -> Path:
    """Create the output directory."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p
