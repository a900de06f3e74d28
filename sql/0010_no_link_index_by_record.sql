-- Links by record are looked up with their lists (an account's sync knows them), in the parent index, which
-- holds (list, record). The index by record alone is needed by no query, yet every link written had to be added
-- to it, and a first read of list members writes a link for each member of every list.
DROP INDEX crm_record_by_ref;
