"""The audience member frame: one row per (marketing list, CRM record) with the record's email and consent."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from dotdyn_pipeline.schemas.email import MAX_EMAIL_LENGTH, valid_email

CRM_TABLES = ("contact", "lead", "account")
GUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class AudienceMember(pa.DataFrameModel):
    """A list member ready to be checked for consent and sent. Data field columns (upper case) may follow.

    Text columns are pandas' string dtype: pandera checks an object column's type by calling a function on every
    value (it still accepts one that holds only text), a string column's by its dtype, once."""

    list_id: Series[pd.StringDtype] = pa.Field(str_matches=GUID_PATTERN)
    crm_table: Series[pd.StringDtype] = pa.Field(isin=CRM_TABLES)
    crm_id: Series[pd.StringDtype] = pa.Field(str_matches=GUID_PATTERN)
    email: Series[pd.StringDtype] = pa.Field(nullable=False, str_length={"max_value": MAX_EMAIL_LENGTH})
    email_raw: Series[pd.StringDtype] = pa.Field(nullable=True)
    donotbulkemail: Series[bool]
    donotemail: Series[bool]
    active: Series[bool]
    modifiedon: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs={"unit": "ns", "tz": "UTC"}, nullable=True)

    @pa.check("email", name="syntax")
    def email_syntax(cls, emails: Series[pd.StringDtype]) -> Series[bool]:
        return valid_email(emails)

    class Config:
        strict = False  # the data field columns depend on the account's mappings
        coerce = False  # a wrong type is schema drift, not a bad row: it fails the batch
