"""One-to-one sends of triggered campaigns: `POST /v2/email/triggered-campaign` and its `/batch` form.

The body is ApiTransactionalEmailTriggeredCampaign: `toAddresses` (each item may hold several addresses
separated by commas, as the swagger says), `campaignId`, `personalizationValues` [{name, value}]. A call is
checked whole before anything is sent, in this order, and refused with:
- 404 ERROR_CAMPAIGN_NOT_FOUND: no campaign has that id;
- 400 ERROR_CAMPAIGN_INVALID: the campaign is not a triggered campaign (no code is documented for this);
- 400 ERROR_INVALID_EMAIL: no address, or one that is not an email address;
- 400 ERROR_CONTACT_SUPPRESSED: an address is suppressed or unsubscribed in the account.
A batch is refused whole when one of its emails is. Each address sent to becomes a contact of the account
when it was none, and gets the campaign's activity row (sent now, no engagement yet); the answer is an
empty 200, as the swagger documents.
"""

from __future__ import annotations

import json
from typing import Any

from dotdyn_pipeline.sandbox.dotdigital.audience import as_int, as_list, field
from dotdyn_pipeline.sandbox.dotdigital.errors import ApiError
from dotdyn_pipeline.sandbox.dotdigital.reporting import campaign_type
from dotdyn_pipeline.sandbox.dotdigital.store import (
    NEVER,
    SUPPRESSED_STATUSES,
    AccountStore,
    normalise_email,
    now_iso,
    valid_email,
)


def _checked(store: AccountStore, email: Any) -> tuple[int, list[str], list[dict[str, str]]]:
    """(campaign id, addresses, personalisation) of one email, or the refusal it gets."""
    if not isinstance(email, dict):
        raise ApiError("ERROR_PARAMETER_INVALID", "Each email must be an object.")
    campaign_id = as_int(field(email, "campaignId"), "campaignId")
    if campaign_type(store, campaign_id) != "Triggered":
        raise ApiError("ERROR_CAMPAIGN_INVALID", "The campaign is not a triggered campaign.")
    addresses = [normalise_email(part) for item in as_list(field(email, "toAddresses"))
                 for part in str(item or "").split(",") if part.strip()]
    if not addresses or not all(valid_email(address) for address in addresses):
        raise ApiError("ERROR_INVALID_EMAIL", "toAddresses must hold valid email addresses.")
    marks = ",".join("?" * len(addresses))
    if store.scalar(f"SELECT COUNT(*) FROM contacts WHERE email IN ({marks}) AND status IN "
                    f"({','.join('?' * len(SUPPRESSED_STATUSES))})", *addresses, *SUPPRESSED_STATUSES):
        raise ApiError("ERROR_CONTACT_SUPPRESSED", "An address in toAddresses is suppressed.")
    values = [{"name": str(field(value, "name") or ""), "value": field(value, "value")}
              for value in as_list(field(email, "personalizationValues"))]
    if any(not value["name"] for value in values):
        raise ApiError("ERROR_PARAMETER_INVALID", "Each personalization value needs a name.")
    return campaign_id, addresses, values


def send_triggered(store: AccountStore, emails: list[Any]) -> None:
    """Check every email, then send them all: one activity row per address, one record per email."""
    if not emails:
        raise ApiError("ERROR_PARAMETER_INVALID", "No email to send.")
    checked = [_checked(store, email) for email in emails]
    stamp = now_iso()
    with store.write() as conn:
        for campaign_id, addresses, values in checked:
            for address in addresses:
                conn.execute("INSERT OR IGNORE INTO contacts (email, created, modified) VALUES (?, ?, ?)",
                             (address, stamp, stamp))
                contact_id = conn.execute("SELECT id FROM contacts WHERE email = ?", (address,)).fetchone()[0]
                conn.execute("INSERT INTO activities VALUES (?, ?, ?, 1, ?, 0, 0, 0, 0, 0, ?, ?, '', 0, 0, 0, ?) "
                             "ON CONFLICT (campaign_id, contact_id) DO UPDATE SET date_sent = excluded.date_sent, "
                             "last_activity = excluded.last_activity",
                             (campaign_id, contact_id, address, stamp, NEVER, NEVER, stamp))
            conn.execute("INSERT INTO triggered_sends (campaign_id, to_addresses, personalization, sent) "
                         "VALUES (?, ?, ?, ?)", (campaign_id, json.dumps(addresses), json.dumps(values), stamp))
            conn.execute("UPDATE campaigns SET date_sent = COALESCE(date_sent, ?), last_activity = ? WHERE id = ?",
                         (stamp, stamp, campaign_id))


def triggered_sends(store: AccountStore, campaign_id: int | None = None) -> list[dict[str, Any]]:
    """Every triggered email sent, oldest first, with its addresses and personalisation (control route)."""
    where, args = ("WHERE campaign_id = ?", (campaign_id,)) if campaign_id is not None else ("", ())
    return [{"type": "triggered", "id": seq, "campaignId": campaign, "toAddresses": json.loads(addresses),
             "personalizationValues": json.loads(values), "recipients": len(json.loads(addresses)),
             "status": "Sent", "accepted": sent, "finished": sent}
            for seq, campaign, addresses, values, sent in store.all(
                f"SELECT seq, campaign_id, to_addresses, personalization, sent FROM triggered_sends {where} "
                "ORDER BY seq", *args)]
