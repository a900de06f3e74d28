"""Split a frame into the rows a pandera model accepts and the failures that quarantine the others."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

#: pandera's check names, as the rule names a data engineer reads in the quarantine.
_RULES = {"not_nullable": "required", "str_length": "too_long", "str_matches": "format", "isin": "not_allowed",
          "field_uniqueness": "duplicate"}
FAILURE_COLUMNS = ["index", "column", "rule", "value"]


class SchemaDrift(ValueError):
    """The batch as a whole does not fit the model (a missing column, a changed type): no row is safe."""


@dataclass(frozen=True)
class Split:
    """Rows that passed, and one failure per (row, column, rule) for those that did not."""

    valid: pd.DataFrame
    failures: pd.DataFrame  # FAILURE_COLUMNS; `index` is the row's index label in the input

    @property
    def quarantined_rows(self) -> int:
        return self.failures["index"].nunique()


def rule_name(column: str, check: str) -> str:
    """`email` + `str_length(None, 254)` -> `email.too_long`; named custom checks keep their name."""
    base = check.split("(", 1)[0]
    return f"{column}.{_RULES.get(base, base)}"


def split_valid(frame: pd.DataFrame, model: type[pa.DataFrameModel]) -> Split:
    """Validate lazily; rows that break any row-level rule leave `valid`. Batch-level failures raise."""
    try:
        model.validate(frame, lazy=True, inplace=True)  # no copy: the model coerces nothing
    except pa.errors.SchemaErrors as errors:
        _forget_accessor(frame)
        cases = errors.failure_cases
        batch_level = cases[cases["index"].isna()]
        if not batch_level.empty:
            problems = "; ".join(f"{row.column}: {row.check} ({row.failure_case})"
                                 for row in batch_level.itertuples())
            raise SchemaDrift(f"{model.__name__}: the batch does not fit the model: {problems}") from None
        failures = pd.DataFrame({
            "index": cases["index"].to_numpy(),
            "column": cases["column"].astype(str).to_numpy(),
            "rule": [rule_name(c, k) for c, k in zip(cases["column"], cases["check"].astype(str), strict=True)],
            "value": cases["failure_case"].map(lambda v: None if pd.isna(v) else str(v)).to_numpy(),
        }).drop_duplicates(subset=["index", "rule"])
        return Split(frame.drop(index=failures["index"].unique()), failures.reset_index(drop=True))
    _forget_accessor(frame)
    return Split(frame, pd.DataFrame(columns=FAILURE_COLUMNS))


def _forget_accessor(frame: pd.DataFrame) -> None:
    """pandas keeps the `frame.pandera` that validation sets on the frame, and the accessor points back: a cycle
    that keeps a large frame alive until the garbage collector's next full pass. Break it, so that the frame goes
    as soon as its last user lets go."""
    vars(frame).pop("pandera", None)
