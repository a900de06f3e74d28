"""The send ledger: each send the pipeline executes for a Dynamics row, step by step (sql/0017).

A send is keyed by the row it was asked for (`esc_emailsend:<id>`, `esc_emailsinglesend:<id>`) and numbered by
attempt. Each step is recorded by compare-and-set from the step before, so that of two runs that took the same
row only one moves it on; a run that finds a step recorded and not followed by the next one knows where the last
run stopped, and asks Dotdigital what happened there before acting again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dotdyn_pipeline.state.backend import Backend

CLAIMED, PREPARED, REQUESTED, SENT, SETTLED = "claimed", "prepared", "requested", "sent", "settled"
#: The steps in their order: a step is recorded only from the one before it.
STEPS = (CLAIMED, PREPARED, REQUESTED, SENT, SETTLED)

_COLUMNS = ("send_key, attempt, account, campaign_id, step, run_id, book_id, send_id, recipients, excluded, "
            "outcome, message, date_sent, claimed_at, updated_at, written_at")


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class SendAttempt:
    """One attempt at one row's send, as far as it got."""

    send_key: str
    attempt: int
    account: str
    campaign_id: int
    step: str
    run_id: str | None = None
    book_id: int | None = None
    send_id: str | None = None
    recipients: int | None = None
    excluded: dict[str, int] = field(default_factory=dict)
    outcome: str | None = None
    message: str | None = None
    date_sent: str | None = None
    claimed_at: str = ""
    updated_at: str = ""
    written_at: str | None = None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> SendAttempt:
        values = list(row)
        values[9] = json.loads(values[9]) if values[9] else {}
        return cls(*values)

    @property
    def done(self) -> bool:
        """Its outcome is known and was written back to Dynamics."""
        return self.step == SETTLED and self.written_at is not None


class SendLedger:
    """The attempts of every send, in the state store."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def latest(self, send_key: str) -> SendAttempt | None:
        rows = self.backend.query(f"SELECT {_COLUMNS} FROM send_attempt WHERE send_key = ? "
                                  "ORDER BY attempt DESC LIMIT 1", (send_key,))
        return SendAttempt.from_row(rows[0]) if rows else None

    def open_attempts(self, account: str) -> list[SendAttempt]:
        """The account's attempts whose outcome is not written back yet, oldest first."""
        rows = self.backend.query(f"SELECT {_COLUMNS} FROM send_attempt WHERE account = ? AND written_at IS NULL "
                                  "ORDER BY claimed_at, send_key", (account,))
        return [SendAttempt.from_row(row) for row in rows]

    def claim(self, send_key: str, attempt: int, account: str, campaign_id: int, run_id: str) -> SendAttempt | None:
        """Record attempt `attempt` of the row's send as claimed by `run_id`; None when it exists already (another
        run claimed it: the caller takes the attempt as it stands instead)."""
        now = _now()
        created = self.backend.execute(
            "INSERT INTO send_attempt (send_key, attempt, account, campaign_id, step, run_id, claimed_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (send_key, attempt) DO NOTHING",
            (send_key, attempt, account, campaign_id, CLAIMED, run_id, now, now))
        return self.latest(send_key) if created == 1 else None

    def advance(self, attempt: SendAttempt, step: str, **facts: Any) -> SendAttempt:
        """Record that `attempt` reached `step` (the one after its own), with the facts learned on the way.

        Raises StaleAttempt when the ledger holds the attempt at another step than `attempt` says: another run
        moved it meanwhile, and this one must read it again rather than act on what it knew."""
        if STEPS.index(step) != STEPS.index(attempt.step) + 1:
            raise ValueError(f"a send moves from {attempt.step} to the next step, not to {step}")
        return self._update(attempt, step, facts)

    def settle(self, attempt: SendAttempt, outcome: str, message: str, **facts: Any) -> SendAttempt:
        """Record the attempt's outcome (Sent, Failed or Cancelled), from whichever step it ended at."""
        return self._update(attempt, SETTLED, {"outcome": outcome, "message": message, **facts})

    def take_over(self, attempt: SendAttempt, run_id: str) -> SendAttempt:
        """Make `run_id` the attempt's runner where an earlier run left it; StaleAttempt when another run took it
        over or moved it on meanwhile (of two runs resuming the same attempt, one goes on)."""
        return self._update(attempt, attempt.step, {"run_id": run_id})

    def written_back(self, attempt: SendAttempt) -> SendAttempt:
        """Record that the settled outcome is in the Dynamics row."""
        if attempt.step != SETTLED:
            raise ValueError("only a settled send is written back")
        return self._update(attempt, SETTLED, {"written_at": _now()})

    def _update(self, attempt: SendAttempt, step: str, facts: dict[str, Any]) -> SendAttempt:
        unknown = set(facts) - {"run_id", "book_id", "send_id", "recipients", "excluded", "outcome", "message",
                                "date_sent", "written_at"}
        if unknown:
            raise ValueError(f"unknown facts of a send: {sorted(unknown)}")
        values = {k: (json.dumps(v, sort_keys=True) if k == "excluded" else v) for k, v in facts.items()}
        assignments = "".join(f", {name} = ?" for name in values)
        changed = self.backend.execute(
            f"UPDATE send_attempt SET step = ?, updated_at = ?{assignments} "
            "WHERE send_key = ? AND attempt = ? AND step = ? AND updated_at = ?",
            (step, _now(), *values.values(), attempt.send_key, attempt.attempt, attempt.step, attempt.updated_at))
        if changed != 1:
            raise StaleAttempt(f"send {attempt.send_key} attempt {attempt.attempt} moved on since step {attempt.step}")
        latest = self.latest(attempt.send_key)
        assert latest is not None
        return latest


class StaleAttempt(Exception):
    """The ledger holds a send at another step than the caller thought: another run moved it on."""
