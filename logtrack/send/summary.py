"""Options of a send run and the summary it returns (what the command prints and exits with)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ..config import Config


@dataclass
class SendOptions:
    """Everything `deliver` needs besides the events; defaults are the documented ones."""

    endpoint: str | None = None  # replaces scheme, host and path prefix; the API path is appended
    state: str | os.PathLike[str] | None = None
    dry_run: bool = False
    validate: bool = False
    since: datetime | None = None  # event time selection, inclusive
    until: datetime | None = None  # exclusive
    retry_failed: bool = False
    skip_uncertain: bool = False
    config: Config = field(default_factory=Config)
    env: Mapping[str, str] | None = None  # secrets come from here (default os.environ)
    concurrency: int = 4  # requests in flight at most (DESIGN §6: "a few")
    max_attempts: int = 8
    backoff_base: float = 0.5  # seconds; doubled per attempt, with jitter
    backoff_max: float = 30.0
    retry_after_max: float = 300.0  # a longer Retry-After is capped (and logged as a retry)
    timeout: float = 30.0
    chunk_rows: int = 50_000  # events prepared together (bounded memory)
    now: datetime | None = None  # tests pin "now" for the age window
    output: Callable[[str], None] | None = None  # dry-run payloads and validation messages
    progress: Callable[[SendSummary], None] | None = None  # called after every batch


@dataclass
class SendSummary:
    """Counts of one run; `exit_code` is 0 only when everything selected was delivered or
    deliberately skipped."""

    destination: str
    dry_run: bool = False
    validate: bool = False
    selected: int = 0
    sent: int = 0  # acknowledged in this run (dry run: would be sent; validate: validated)
    skipped: int = 0  # already delivered (or a duplicate event id in the input)
    skipped_rejected: int = 0  # rejected earlier as invalid; --retry-failed sends them again
    skipped_uncertain: int = 0  # in flight at an earlier crash, skipped by --skip-uncertain
    uncertain: int = 0  # in flight at an earlier crash (resent unless skipped)
    refused: Counter[str] = field(default_factory=Counter)  # too old / invalid, by reason
    failed: Counter[str] = field(default_factory=Counter)  # retries ran out etc., by reason
    requests: int = 0
    retries: int = 0
    splits: int = 0
    messages: int = 0  # validation messages
    elapsed: float = 0.0
    fatal: str | None = None
    hints: list[str] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        """Acknowledged events per second of wall time."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def exit_code(self) -> int:
        """0 when nothing was refused, failed or flagged by validation; else 1."""
        bad = self.fatal or sum(self.refused.values()) or sum(self.failed.values()) or self.messages
        return 1 if bad else 0

    def render(self) -> str:
        """The human summary printed at the end of a run (never holds a secret)."""
        verb = "would send" if self.dry_run else ("validated" if self.validate else "sent")
        lines = [f"{self.destination}: {self.selected} selected, {verb} {self.sent}, "
                 f"skipped {self.skipped} (already delivered), "
                 f"refused {sum(self.refused.values())}, failed {sum(self.failed.values())}, "
                 f"uncertain {self.uncertain}; {self.requests} requests, {self.retries} retries, "
                 f"{self.elapsed:.1f} s, {self.events_per_s:,.0f} events/s"]
        if self.skipped_rejected:
            lines.append(f"  skipped {self.skipped_rejected} rejected earlier as invalid "
                         "(--retry-failed sends them again)")
        if self.uncertain:
            how = (f"skipped {self.skipped_uncertain} (--skip-uncertain)" if self.skipped_uncertain
                   else "resent (they may arrive twice where the API cannot deduplicate)")
            lines.append(f"  {self.uncertain} events were in flight when an earlier run stopped: {how}")
        for title, counter in (("refused", self.refused), ("failed", self.failed)):
            for reason, n in counter.most_common(10):
                lines.append(f"  {title} {n}: {reason}")
            if len(counter) > 10:
                lines.append(f"  {title}: {len(counter) - 10} more reasons")
        if self.messages:
            lines.append(f"  {self.messages} validation messages")
        if self.fatal:
            lines.append(f"  stopped: {self.fatal}")
        lines.extend(f"  hint: {h}" for h in self.hints)
        return "\n".join(lines)
