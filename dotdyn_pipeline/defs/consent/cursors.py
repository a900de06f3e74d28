"""Where the consent sensors' Dotdigital reads stopped, kept as text in the state store's sync_cursor.

Dotdigital's since-date lists are read oldest first from a whole second (the finest its path takes), so a
cursor is that second plus how many of its rows were read; a read resumes a little before that position and
the ledger drops what it has seen, so no row is skipped even if rows of that second move.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta

#: Where the first read of an account's suppressions starts: everything Dotdigital still holds.
BEGINNING = "2000-01-01T00:00:00+00:00"
#: Rows read again when a read resumes (a row that moved inside its second cannot be skipped).
OVERLAP = 100
#: How far a pass over modified contacts reaches back before the previous pass began (clock skew).
RESCAN = timedelta(minutes=2)


def whole_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


class _Cursor:
    """What both cursors share: a JSON text form, the instant they start from, and the row to resume from."""

    since: str
    skip: int

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def since_time(self) -> datetime:
        return datetime.fromisoformat(self.since)

    @property
    def start(self) -> int:
        """The row to resume from."""
        return max(0, self.skip - OVERLAP)


@dataclass(frozen=True)
class SinceCursor(_Cursor):
    """Rows at or after `since` (oldest first), of which the first `skip` were read already."""

    since: str = BEGINNING
    skip: int = 0

    @classmethod
    def load(cls, text: str | None) -> SinceCursor:
        return cls(**json.loads(text)) if text else cls()


class SinceTracker:
    """Follows a since-read row by row and says where the next read starts."""

    def __init__(self, cursor: SinceCursor) -> None:
        # the rows before `start` are all in the cursor's second (that is how `skip` was counted)
        self.second, self.count = whole_second(cursor.since_time), cursor.start

    def consumed(self, moment: datetime | None) -> None:
        if moment is None:
            return
        second = whole_second(moment)
        if second > self.second:
            self.second, self.count = second, 1
        elif second == self.second:
            self.count += 1

    @property
    def cursor(self) -> SinceCursor:
        return SinceCursor(self.second.isoformat(), self.count)


@dataclass(frozen=True)
class ScanCursor(_Cursor):
    """A pass over the contacts modified since `since` (listed by id), begun at `started`; `skip` read.

    Between passes `started` is None; the next pass reads from a little before the previous one began.
    """

    since: str
    started: str | None = None
    skip: int = 0

    @classmethod
    def load(cls, text: str | None, now: datetime) -> ScanCursor:
        return cls(**json.loads(text)) if text else cls((now - RESCAN).isoformat())

    def begun(self, now: datetime) -> ScanCursor:
        return self if self.started else replace(self, started=now.isoformat(), skip=0)

    def finished(self) -> ScanCursor:
        assert self.started is not None
        return ScanCursor((datetime.fromisoformat(self.started) - RESCAN).isoformat())
