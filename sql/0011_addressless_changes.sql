-- Person records without an address whose audience may have changed (the record changed, or joined a list):
-- an incremental sync cannot find them by an address, so it looks them up by id and quarantines those on its
-- lists, as a full pass does.
CREATE TABLE crm_record_change (
    crm_table   TEXT NOT NULL,
    crm_id      TEXT NOT NULL,
    changed_at  TEXT NOT NULL,
    PRIMARY KEY (crm_table, crm_id)
);
CREATE INDEX crm_record_change_by_time ON crm_record_change (changed_at);
