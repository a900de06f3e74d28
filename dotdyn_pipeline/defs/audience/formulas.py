"""Text that a spreadsheet would take for a formula, sent as text.

Dotdigital stores a contact's data field values as they are imported, and a user who exports contacts opens
them in a spreadsheet, which takes a cell that begins with `=`, `+`, `-`, `@`, a tab, a carriage return or a
line feed for a formula (OWASP, "CSV Injection"). CRM data is written by many people, so a value that begins so
is sent behind a single quote, which spreadsheets show as text, when its data field is one that Dotdigital holds
as text (String). Numeric, Date and Boolean values are sent as they are (`-5` stays a number). Each account may
turn this off (esc_emailaccount.esc_csvformulaprotection).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dotdyn_pipeline.connectors.dotdigital.models import DataField

#: The first characters that make a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
#: What is put before such a value.
QUOTE = "'"


def text_fields(data_fields: Iterable[DataField]) -> frozenset[str]:
    """The names (upper case, as the pipeline writes them) of the data fields of type String."""
    return frozenset(field.name.upper() for field in data_fields if field.type == "String")


@dataclass
class FormulaGuard:
    """Sends the values of the text `fields` that begin like a formula behind a quote, and counts them. One guard
    serves one import at a time."""

    fields: frozenset[str]
    neutralised: int = 0

    def column(self, name: str, values: np.ndarray) -> np.ndarray:
        """The values of data field `name` as they are to be sent (`values` itself when nothing changes)."""
        if name not in self.fields:
            return values
        risky = np.fromiter((type(value) is str and value.startswith(FORMULA_STARTS) for value in values),
                            dtype=bool, count=len(values))
        if not risky.any():
            return values
        values = values.copy()  # it may be the frame's own array
        values[risky] = QUOTE + values[risky]
        self.neutralised += int(risky.sum())
        return values
