-- A list's members are read in (list, record) order: with the record id in the parent index, that read is
-- answered from the index alone, in order, instead of a lookup of each link row and a sort of each list.
DROP INDEX crm_record_by_parent;
CREATE INDEX crm_record_by_parent ON crm_record (crm_table, parent_id, ref_id) WHERE parent_id IS NOT NULL;
