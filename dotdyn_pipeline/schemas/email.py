"""Email addresses as the pipeline accepts them: trimmed, domain lower-cased, syntax checked."""

from __future__ import annotations

import re

import pandas as pd

_LOCAL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOMAIN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: A practical subset of RFC 5322: dot-atoms on both sides, a top-level domain of letters.
EMAIL_PATTERN = rf"{_LOCAL_ATOM}(?:\.{_LOCAL_ATOM})*@(?:{_DOMAIN_LABEL}\.)+[A-Za-z]{{2,63}}"
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_LENGTH = 64
#: The pattern, with the local part (everything before the first @, which it cannot contain) at most 64 long.
_VALID_RE = re.compile(rf"(?=[^@]{{1,{MAX_LOCAL_LENGTH}}}@){EMAIL_PATTERN}")


def normalise_emails(raw: pd.Series) -> pd.Series:
    """Trim and lower-case the domain; the local part keeps its case. Missing stays missing. An address already
    in form is kept as the same string object (a million copies would be held for nothing)."""
    return pd.Series([value if value is pd.NA else _normalise(value)
                      for value in raw.astype("string").to_numpy(dtype=object)], index=raw.index, dtype="string")


def _normalise(address: str) -> str:
    address = address.strip()
    local, at, domain = address.rpartition("@")
    lowered = domain.lower()
    return address if not at or lowered == domain else f"{local}@{lowered}"


def is_valid_address(address: str) -> bool:
    """One (normalised) address, as `valid_email` judges a column of them."""
    return len(address) <= MAX_EMAIL_LENGTH and _VALID_RE.fullmatch(address) is not None


def valid_email(emails: pd.Series) -> pd.Series:
    """True where the (normalised) address is syntactically valid and within the length limits."""
    text = emails.astype("string")
    return (text.str.fullmatch(_VALID_RE).fillna(False)
            & (text.str.len() <= MAX_EMAIL_LENGTH).fillna(False)).astype(bool)


def address_key(email: str | None) -> str | None:
    """One address as people are matched on it (see `email_key`); None when there is none."""
    return (email or "").strip().lower() or None


def email_key(emails: pd.Series) -> pd.Series:
    """The address as people are matched on it: case-insensitive as a whole."""
    text = emails.astype("string")
    return _reuse_equal(text.str.lower(), text)


def _reuse_equal(new: pd.Series, old: pd.Series) -> pd.Series:
    """`new`, holding `old`'s string objects where the two are equal: most addresses are already in form, and
    a million duplicate strings would be held for nothing."""
    return old.where(new.eq(old).fillna(False), new)
