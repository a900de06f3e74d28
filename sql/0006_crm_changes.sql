-- Addresses whose audience may have changed, as the org-wide extract finds them: a person record changed
-- (its address before and after), was deleted, or joined or left a list. Each account's sync then looks only
-- at the addresses changed since its own last sync, instead of at every member.
CREATE TABLE crm_change (
    email_key   TEXT NOT NULL PRIMARY KEY,
    changed_at  TEXT NOT NULL
);
CREATE INDEX crm_change_by_time ON crm_change (changed_at);
-- The links that point at a record (only link rows have a ref_id, so only they are indexed).
CREATE INDEX crm_record_by_ref ON crm_record (crm_table, ref_id) WHERE ref_id IS NOT NULL;
-- A ledger entry recorded or lifted since an account's last sync changes who may be sent.
CREATE INDEX unsubscribe_ledger_by_time ON unsubscribe_ledger (account, recorded_at);
