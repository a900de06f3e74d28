"""Email addresses as the pipeline accepts them: trimmed, domain lower-cased, syntax checked."""

from __future__ import annotations

import re

import pandas as pd

_LOCAL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOMAIN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: A practical subset of RFC 5322: dot-atoms on both sides, a top-level domain of letters.
EMAIL_PATTERN = rf"{_LOCAL_ATOM}(?:\.{_LOCAL_ATOM})*@(?:{_DOMAIN_LABEL}\.)+[A-Za-z]{{2,63}}"
EMAIL_RE = re.compile(EMAIL_PATTERN)
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_LENGTH = 64


def normalise_emails(raw: pd.Series) -> pd.Series:
    """Trim and lower-case the domain; the local part keeps its case. Missing stays missing."""
    text = raw.astype("string").str.strip()
    parts = text.str.rsplit("@", n=1, expand=True)
    if parts.shape[1] < 2:  # no value has an @: nothing to lower-case
        return text
    has_domain = parts[1].notna()
    return _reuse_equal(text.where(~has_domain, parts[0] + "@" + parts[1].str.lower()), text)


def valid_email(emails: pd.Series) -> pd.Series:
    """True where the (normalised) address is syntactically valid and within the length limits."""
    text = emails.astype("string")
    local = text.str.rsplit("@", n=1).str[0]
    return (text.str.fullmatch(EMAIL_PATTERN).fillna(False)
            & (text.str.len() <= MAX_EMAIL_LENGTH).fillna(False)
            & (local.str.len() <= MAX_LOCAL_LENGTH).fillna(False)).astype(bool)


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
