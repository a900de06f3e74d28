"""Who is sent: consent first, then one person per email per address book.

Every row that is not kept is counted under exactly one reason, in this order of precedence:
`inactive` (the record is deactivated), `opted_out` (donotbulkemail or donotemail on any CRM record with
that address), `unsubscribed` (in the state store's unsubscribe ledger: an unsubscribe or suppression seen on
either side, account-wide or for that list's address book), `duplicate_email` (another record with the same
address won, see PRECEDENCE).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

import pandas as pd

from dotdyn_pipeline.schemas.email import email_key

#: Whose data fields are sent when records share an address: a contact over a lead over an account, then
#: the most recently modified record, then the lowest id (so the choice never depends on read order).
PRECEDENCE = {"contact": 0, "lead": 1, "account": 2}
SKIP_REASONS = ("inactive", "opted_out", "unsubscribed", "duplicate_email")


@dataclass(frozen=True)
class Selection:
    kept: pd.DataFrame
    skipped: pd.Series  # reason per index label of the input

    def skipped_counts(self) -> dict[str, int]:
        return {reason: int(n) for reason, n in self.skipped.value_counts().items()}


def apply_consent(members: pd.DataFrame, *, opted_out: Set[str], unsubscribed: Set[str],
                  list_unsubscribed: Mapping[str, Set[str]] | None = None) -> Selection:
    """Drop inactive records and every address that must not be emailed. The sets hold lower-case addresses;
    `list_unsubscribed` holds, per list id, the addresses that left that list's address book only."""
    keys = email_key(members["email"])
    flagged = members["donotbulkemail"] | members["donotemail"]
    opted = set(opted_out) | set(keys[flagged].dropna())
    left_list = pd.Series(False, index=members.index)
    for list_id, addresses in (list_unsubscribed or {}).items():
        left_list |= (members["list_id"] == list_id) & keys.isin(addresses).fillna(False)
    # Each rule overwrites the ones before it, so a row ends with the first reason of SKIP_REASONS it breaks.
    reason = pd.Series(pd.NA, index=members.index, dtype="string")
    for name, mask in (("unsubscribed", keys.isin(unsubscribed).fillna(False) | left_list),
                       ("opted_out", keys.isin(opted).fillna(False)), ("inactive", ~members["active"])):
        reason = reason.mask(mask.to_numpy(), name)
    skipped = reason.notna().to_numpy()
    return Selection(members[~skipped], reason[skipped])  # one copy of the batch, however many rules


def one_per_email(members: pd.DataFrame) -> Selection:
    """Keep one row per (list, address), by PRECEDENCE; the others are `duplicate_email`."""
    keys = pd.DataFrame({"list_id": members["list_id"], "_key": email_key(members["email"])})
    shared = keys.duplicated(keep=False).to_numpy()  # only rows sharing an address are ranked (and sorted)
    order = pd.DataFrame({**keys[shared], "_rank": members.loc[shared, "crm_table"].map(PRECEDENCE),
                          "_modified": members.loc[shared, "modifiedon"], "crm_id": members.loc[shared, "crm_id"]})
    order = order.sort_values(["list_id", "_key", "_rank", "_modified", "crm_id"],
                              ascending=[True, True, True, False, True], na_position="last", kind="stable")
    loser = order.duplicated(subset=["list_id", "_key"], keep="first")
    losers = order.index[loser.to_numpy()]
    return Selection(members.drop(index=losers),
                     pd.Series("duplicate_email", index=losers, dtype="string"))
