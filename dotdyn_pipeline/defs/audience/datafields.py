"""CRM values as Dotdigital data field values: names that Dotdigital accepts, values of the field's type.

A value that cannot be converted, or a string longer than the field allows, is a failure to quarantine with
its reason: nothing is cut short or guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dotdyn_pipeline.connectors.dotdigital.models import DATA_FIELD_TYPES, check_data_field_name

#: The longest String value taken by default (DOTDYN_MAX_STRING_LENGTH): Dotdigital does not document its limit
#: (docs/audience.md).
DEFAULT_MAX_STRING_LENGTH = 255
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def data_field_name(label: str) -> str:
    """A valid, upper-case data field name for a label: other characters become `_`, cut to 20."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", label.strip()).strip("_").upper()[:20].rstrip("_")
    if not name:
        raise ValueError(f"{label!r} has no character a data field name can use")
    return check_data_field_name(name)


def convert(values: pd.Series, field_type: str, max_length: int = DEFAULT_MAX_STRING_LENGTH
            ) -> tuple[pd.Series, pd.Series, str]:
    """Convert to the import's text for `field_type`; return (text, failed mask, rule name for failures).

    Missing values stay missing and never fail.
    """
    present = values.notna()
    if field_type == "String":
        text = values.astype("string")
        return text, (text.str.len() > max_length).fillna(False), "too_long"
    if field_type == "Numeric":
        numbers = pd.to_numeric(values, errors="coerce")
        failed = present & numbers.isna()
        return numbers.map(_number_text, na_action="ignore").astype("string"), failed, "not_numeric"
    if field_type == "Date":
        dates = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
        missing = dates.isna()
        # ISO text to the second (2024-01-31T00:00:00), written by numpy: strftime took 8 times as long
        text = np.datetime_as_string(dates.dt.tz_localize(None).to_numpy(), unit="s")
        return pd.Series(text, index=values.index, dtype="string").mask(missing), present & missing, "not_a_date"
    if field_type == "Boolean":
        lowered = values.map(lambda v: str(v).strip().lower(), na_action="ignore")
        text = lowered.map(lambda v: "true" if v in _TRUE else "false" if v in _FALSE else None, na_action="ignore")
        return text.astype("string"), present & text.isna(), "not_boolean"
    raise ValueError(f"unknown data field type {field_type!r}; expected one of {DATA_FIELD_TYPES}")


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def convert_frame(frame: pd.DataFrame, field_types: dict[str, str], max_length: int = DEFAULT_MAX_STRING_LENGTH,
                  carry: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert every data field column; return (rows whose every value converted: the `carry` columns, by default
    every other one, then the converted fields; failures per row and field). No column is copied."""
    columns = {name: frame[name] for name in (frame.columns if carry is None else carry) if name not in field_types}
    failures = []
    for name, field_type in field_types.items():
        text, failed, rule = convert(frame[name], field_type, max_length)
        columns[name] = text
        if failed.any():
            bad = frame.index[failed.to_numpy()]
            failures.append(pd.DataFrame({"index": bad, "column": name, "rule": f"{name}.{rule}",
                                          "value": frame.loc[bad, name].astype(str).to_numpy()}))
    converted = pd.DataFrame(columns, index=frame.index, copy=False)
    if not failures:
        return converted, pd.DataFrame(columns=["index", "column", "rule", "value"])
    failed_rows = pd.concat(failures, ignore_index=True)
    return converted.drop(index=failed_rows["index"].unique()), failed_rows
