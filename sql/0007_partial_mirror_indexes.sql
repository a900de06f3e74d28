-- Only people carry an address and only links carry a parent: index just those rows, so that each
-- mirrored row feeds the indexes it is looked up by, and a large extract writes about a third less.
DROP INDEX crm_record_by_email;
CREATE INDEX crm_record_by_email ON crm_record (email_key) WHERE email_key IS NOT NULL;
DROP INDEX crm_record_by_parent;
CREATE INDEX crm_record_by_parent ON crm_record (crm_table, parent_id) WHERE parent_id IS NOT NULL;
