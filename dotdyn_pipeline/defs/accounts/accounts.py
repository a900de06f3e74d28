"""The `email_account` partitions and the esc_emailaccount rows behind them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import dagster as dg

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.connectors.dataverse.odata import literal
from dotdyn_pipeline.connectors.dotdigital import DotdigitalClient
from dotdyn_pipeline.resources import DotdigitalResource

email_account_partitions = dg.DynamicPartitionsDefinition(name="email_account")

ACCOUNT_COLUMNS = ("esc_emailaccountid", "esc_name", "esc_apiuser", "esc_secretname", "esc_transport",
                   "esc_csvformulaprotection", "statecode")
ACTIVE = 0  # statecode of an active row


@dataclass(frozen=True)
class EmailAccount:
    """A Dotdigital account as Dynamics records it; the API password lives in the variable `secret_name`.
    `formula_protection`: text values that begin like a spreadsheet formula are sent as text (on unless the row
    says no)."""

    id: str
    name: str
    api_user: str
    secret_name: str
    transport: str
    formula_protection: bool = True

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EmailAccount:
        return cls(id=row["esc_emailaccountid"], name=(row.get("esc_name") or "").strip(),
                   api_user=row["esc_apiuser"], secret_name=row["esc_secretname"],
                   transport=(row.get("esc_transport") or "rest").lower(),
                   formula_protection=row.get("esc_csvformulaprotection") is not False)

    def dotdigital(self, resource: DotdigitalResource) -> DotdigitalClient:
        return resource.client(api_user=self.api_user, secret_name=self.secret_name, transport=self.transport)


def active_accounts(client: DataverseClient) -> list[EmailAccount]:
    """Every active esc_emailaccount row."""
    return [EmailAccount.from_row(row)
            for page in client.read("esc_emailaccount", ACCOUNT_COLUMNS, filter=f"statecode eq {ACTIVE}")
            for row in page]


def email_account(client: DataverseClient, account_id: str) -> EmailAccount:
    """The active account with this id; a clear error when it is gone or deactivated."""
    rows = [row for page in client.read("esc_emailaccount", ACCOUNT_COLUMNS,
                                        filter=f"esc_emailaccountid eq {literal(uuid.UUID(account_id))}")
            for row in page]
    if not rows or rows[0].get("statecode") != ACTIVE:
        raise LookupError(f"email account {account_id} is not an active esc_emailaccount row")
    return EmailAccount.from_row(rows[0])
