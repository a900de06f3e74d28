-- Dynamic marketing lists hold no listmember rows in Dynamics: their members are what the list's FetchXML query
-- selects when it runs. Each account's sync runs the query of each of its dynamic lists and keeps the result as
-- link rows of the mirror (crm_record, crm_table 'list_query_member': parent_id the list, ref_id the record), as
-- it keeps a static list's members, so that both are read the same way; the next evaluation is compared with
-- them and only the people who entered or left go through the incremental load.
-- This table is each dynamic list's last evaluation: which table its members come from, how many it selected
-- and when (evaluated_at: the last success), and the error of a query that failed since (error and failed_at,
-- cleared by the next success). A list whose query failed keeps the members of its last success.
CREATE TABLE list_evaluation (
    list_id       TEXT    NOT NULL PRIMARY KEY,
    account       TEXT    NOT NULL,
    member_table  TEXT,
    members       INTEGER NOT NULL,
    evaluated_at  TEXT,
    error         TEXT,
    failed_at     TEXT
);
CREATE INDEX list_evaluation_by_account ON list_evaluation (account);
