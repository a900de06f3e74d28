"""Map: members' CRM attributes as the Dotdigital data fields their account's mappings name.

The data fields are created in Dotdigital when missing, with valid names and the mapped types; a value that
cannot be converted to its field's type, or is too long, quarantines the row with the reason. A mapping that
fails its check (mappings.py) is quarantined here, and a check warns until it is mended.
"""

import gc
import time

import dagster as dg
import pandas as pd

from dotdyn_pipeline.defs.accounts.accounts import email_account, email_account_partitions
from dotdyn_pipeline.defs.accounts.partitions import partition_account
from dotdyn_pipeline.defs.audience.datafields import convert_frame
from dotdyn_pipeline.defs.audience.extract import PERSON_TABLES
from dotdyn_pipeline.defs.audience.mappings import (
    MAPPINGS_CHECK,
    bad_mappings_table,
    check_mappings,
    mapping_rows,
    mappings_check,
)
from dotdyn_pipeline.defs.audience.members import quarantine_rows
from dotdyn_pipeline.resources import DataverseResource, DotdigitalResource, StateStoreResource
from dotdyn_pipeline.schemas.email import email_key
from dotdyn_pipeline.settings import Settings

CONTACT_COLUMNS = ["list_id", "crm_table", "crm_id", "email", "email_key", "fingerprint"]


def fingerprints(frame: pd.DataFrame, fields: list[str]) -> pd.Series:
    """A digest of what would be sent for each row (address and data field values), column by column in
    compiled code: no row's text is ever built. A stored digest from another version only means one resend."""
    digests = pd.util.hash_pandas_object(frame[["email", *fields]], index=False).to_numpy()
    text = digests.astype(">u8").tobytes().hex()  # big-endian: each digest's 16 hex digits in turn, in one pass
    return pd.Series([text[at:at + 16] for at in range(0, len(text), 16)], index=frame.index, dtype=object)


@dg.asset(group_name="audience", partitions_def=email_account_partitions, kinds={"pandas", "dotdigital"},
          pool="dotdigital", description="Members as Dotdigital contacts: data field values of the right type.",
          check_specs=[dg.AssetCheckSpec(MAPPINGS_CHECK, asset="audience_contacts",
                                         description="Warns while some of the account's data mappings are left "
                                                     "out and quarantined, naming each with the rule it broke.")])
def audience_contacts(context: dg.AssetExecutionContext, audience_members: pd.DataFrame,
                      dataverse: DataverseResource, dotdigital: DotdigitalResource, state: StateStoreResource):
    gc.collect()  # what the last step left in reference cycles goes now, before this step's peak
    started, account_id = time.monotonic(), partition_account(context, state)
    with state.open() as store, dataverse.client() as crm:
        mappings = check_mappings(mapping_rows(store, account_id), PERSON_TABLES, crm.attributes)
        # a mapping that came into the mirror after audience_members read it has no column yet: the next sync
        # (a full pass, since the account's mappings changed) sends it
        field_types = {m.field: m.type for m in mappings.valid if m.field in audience_members.columns}
        converted, failures = convert_frame(audience_members, field_types, Settings.from_env().max_string_length,
                                            carry=["list_id", "crm_table", "crm_id", "email"])
        store.quarantine([*quarantine_rows(audience_members, failures, account_id, context.run.run_id),
                          *(bad.quarantined(context.run.run_id) for bad in mappings.bad)])
        account = email_account(crm, account_id)
    with account.dotdigital(dotdigital) as client:
        client.ensure_data_fields(field_types)
        created, calls = client.counter.snapshot().get("create_data_field", 0), client.counter.total
    fields = sorted(field_types)
    derived = {"email_key": email_key(converted["email"]), "fingerprint": fingerprints(converted, fields)}
    contacts = pd.DataFrame({name: derived[name] if name in derived else converted[name]
                             for name in [*CONTACT_COLUMNS, *fields]}, copy=False)  # no column is copied
    contacts.attrs = dict(audience_members.attrs)  # the sync's scope, for the load
    yield dg.Output(contacts, metadata={
        "rows_in": dg.MetadataValue.int(len(audience_members)),
        "rows_out": dg.MetadataValue.int(len(contacts)),
        "rows_quarantined": dg.MetadataValue.int(failures["index"].nunique()),
        "mappings_quarantined": dg.MetadataValue.int(len(mappings.bad)),
        **({"quarantined_mappings": dg.MetadataValue.md(bad_mappings_table(mappings.bad))} if mappings.bad else {}),
        "data_fields": dg.MetadataValue.int(len(fields)),
        "data_fields_created": dg.MetadataValue.int(created),
        "dotdigital_calls": dg.MetadataValue.int(calls),
        "duration_s": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
    })
    yield mappings_check(mappings.bad)
