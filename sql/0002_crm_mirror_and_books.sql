-- A local copy of the CRM rows the audience flow reads, kept current by change tracking: each run extracts
-- only what changed, and every account's members are computed from here without reading Dynamics again.
-- data is the row as read (JSON of the selected columns); email_key the lower-case address, so that an
-- opt-out on any record with an address is found across contacts, leads and accounts. parent_id and
-- ref_id hold a link row's two ends (a list member: its list and its contact, lead or account).
CREATE TABLE crm_record (
    crm_table     TEXT    NOT NULL,
    crm_id        TEXT    NOT NULL,
    parent_id     TEXT,
    ref_id        TEXT,
    email_key     TEXT,
    opted_out     INTEGER NOT NULL,
    data          TEXT    NOT NULL,
    extracted_at  TEXT    NOT NULL,
    PRIMARY KEY (crm_table, crm_id)
);
CREATE INDEX crm_record_by_email ON crm_record (email_key);
CREATE INDEX crm_record_by_parent ON crm_record (crm_table, parent_id);

-- Who is in each address book as the pipeline last left it, with a fingerprint of the data fields sent:
-- a member whose fingerprint is unchanged is not sent again, so a run with no change makes no write call.
CREATE TABLE book_member (
    account                TEXT   NOT NULL,
    address_book_id        BIGINT NOT NULL,
    email_key              TEXT   NOT NULL,
    crm_table              TEXT   NOT NULL,
    crm_id                 TEXT   NOT NULL,
    fingerprint            TEXT   NOT NULL,
    dotdigital_contact_id  BIGINT,
    updated_at             TEXT   NOT NULL,
    PRIMARY KEY (account, address_book_id, email_key)
);

-- Named leases that keep two runs from doing the same exclusive work at once (the org-wide extraction);
-- a lease whose holder died expires.
CREATE TABLE lease (
    name        TEXT NOT NULL PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
