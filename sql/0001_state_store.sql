-- The state store: the middleware's own memory beside Dagster's.
-- Portable SQL: it runs unchanged on PostgreSQL (in its own schema) and on SQLite.
-- Times are ISO-8601 UTC text ('2026-11-27T17:44:42.123456+00:00'): they sort correctly and read the same
-- from both backends.

-- Where each incremental read stopped: a Dataverse delta link, or a watermark for tables without change
-- tracking (and for Dotdigital "since" reads). scope is an email account id, or '*' for org-wide tables.
CREATE TABLE sync_cursor (
    scope       TEXT NOT NULL,
    source      TEXT NOT NULL,
    delta_link  TEXT,
    watermark   TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (scope, source)
);

-- Which Dotdigital contact a CRM record is, per email account. An email change in Dynamics updates the
-- contact found here instead of creating a second one.
CREATE TABLE contact_map (
    account                TEXT   NOT NULL,
    crm_table              TEXT   NOT NULL,
    crm_id                 TEXT   NOT NULL,
    email                  TEXT   NOT NULL,
    dotdigital_contact_id  BIGINT NOT NULL,
    updated_at             TEXT   NOT NULL,
    PRIMARY KEY (account, crm_table, crm_id)
);
CREATE INDEX contact_map_by_contact ON contact_map (account, dotdigital_contact_id);
CREATE INDEX contact_map_by_email ON contact_map (account, email);

-- Every bulk import sent to Dotdigital and how it ended; report is the parsed import report as JSON.
CREATE TABLE import_job (
    import_id        TEXT    NOT NULL PRIMARY KEY,
    account          TEXT    NOT NULL,
    address_book_id  BIGINT  NOT NULL,
    run_id           TEXT,
    status           TEXT    NOT NULL,
    rows_sent        INTEGER NOT NULL,
    rows_imported    INTEGER,
    rows_faulted     INTEGER,
    report           TEXT,
    created_at       TEXT    NOT NULL,
    finished_at      TEXT
);
CREATE INDEX import_job_by_account ON import_job (account, status);

-- Rows that were not sent, with the rule they broke and the offending value.
CREATE TABLE quarantine (
    id            TEXT NOT NULL PRIMARY KEY,
    account       TEXT NOT NULL,
    source_table  TEXT NOT NULL,
    record_id     TEXT NOT NULL,
    rule          TEXT NOT NULL,
    column_name   TEXT,
    value         TEXT,
    reason        TEXT NOT NULL,
    run_id        TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX quarantine_by_run ON quarantine (account, run_id, rule);
CREATE INDEX quarantine_by_record ON quarantine (account, source_table, record_id);

-- Every unsubscribe and suppression seen on either side, once (event_key is its natural key), and when it
-- reached the other side. A row without resubscribed_at means: never subscribe this address again.
CREATE TABLE unsubscribe_ledger (
    event_key        TEXT   NOT NULL PRIMARY KEY,
    account          TEXT   NOT NULL,
    email            TEXT   NOT NULL,
    scope            TEXT   NOT NULL,
    address_book_id  BIGINT,
    source           TEXT   NOT NULL,
    reason           TEXT,
    occurred_at      TEXT   NOT NULL,
    recorded_at      TEXT   NOT NULL,
    propagated_at    TEXT,
    resubscribed_at  TEXT
);
CREATE INDEX unsubscribe_ledger_by_email ON unsubscribe_ledger (account, email);
CREATE INDEX unsubscribe_ledger_pending ON unsubscribe_ledger (account, source, propagated_at);

-- API calls per account, API, kind of call and UTC day: for quota pacing and the metadata plots.
CREATE TABLE api_calls (
    account  TEXT   NOT NULL,
    api      TEXT   NOT NULL,
    kind     TEXT   NOT NULL,
    day      TEXT   NOT NULL,
    calls    BIGINT NOT NULL,
    PRIMARY KEY (account, api, kind, day)
);
