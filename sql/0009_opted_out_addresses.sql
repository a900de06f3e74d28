-- Every full sync asks for the addresses that opted out on any record: indexed on those rows alone (a few per
-- cent), that question no longer reads the whole mirror, a cost that would grow with every row mirrored.
CREATE INDEX crm_record_opted_out ON crm_record (email_key) WHERE opted_out = 1 AND email_key IS NOT NULL;
