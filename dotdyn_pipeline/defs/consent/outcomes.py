"""What became of each ledger entry a consent run handled, and how the UI shows it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dotdyn_pipeline.state import LedgerEntry

#: Outcomes after which the entry counts as propagated (the other side accepted it, or holds nothing to change).
DONE = ("applied", "not_in_dotdigital", "no_list", "lifted")
TABLE_ROWS = 200  # rows of the metadata table; the counts cover all of them


@dataclass
class Outcomes:
    """Per entry: applied, not_in_dotdigital, no_list, lifted (a resubscribe came first) or failed."""

    entries: list[tuple[LedgerEntry, str, str]] = field(default_factory=list)  # entry, outcome, detail

    def add(self, entry: LedgerEntry, outcome: str, detail: str = "") -> None:
        self.entries.append((entry, outcome, detail))

    def counts(self) -> dict[str, int]:
        return dict(Counter(outcome for _, outcome, _ in self.entries))

    @property
    def failures(self) -> list[str]:
        return [f"{entry.event.email}: {detail}" for entry, outcome, detail in self.entries if outcome == "failed"]

    def table(self) -> str:
        """A Markdown table of the entries: address, scope, source, reason, when, outcome."""
        lines = ["| address | scope | book | source | reason | occurred | outcome |", "|---|---|---|---|---|---|---|"]
        for entry, outcome, detail in self.entries[:TABLE_ROWS]:
            event = entry.event
            lines.append(f"| {event.email} | {event.scope} | {event.address_book_id or ''} | {event.source} | "
                         f"{(event.reason or '').replace('|', '/')} | {event.occurred_at} | "
                         f"{outcome}{': ' + detail.replace('|', '/') if detail else ''} |")
        if len(self.entries) > TABLE_ROWS:
            lines.append(f"| ... {len(self.entries) - TABLE_ROWS} more | | | | | | |")
        return "\n".join(lines)
