-- Links by record are looked up with their lists (an account's sync knows them), in the parent index, which
-- holds (list, record). The index by record alone cost a third of the writes of a first read of list members
-- (1.16 million links: 41-45 s with it, 27-31 s without, on SQLite).
DROP INDEX crm_record_by_ref;
