-- The partition key of each email account: its name made into a key when the account is first seen, then
-- kept, so that a rename in Dynamics moves no partition and loses no history. name is the account's current
-- name, for the run tags. former_key is the key the account's partition had before keys were made from names
-- (its id): the runs and materialisations made under it are recorded by it, and a run of the old partition,
-- while the move has not removed it yet, still finds its account. Every other table stays keyed by the id.
CREATE TABLE account_partition (
    account_id     TEXT NOT NULL PRIMARY KEY,
    partition_key  TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    former_key     TEXT UNIQUE,
    assigned_at    TEXT NOT NULL
);
