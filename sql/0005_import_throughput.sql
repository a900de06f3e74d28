-- How fast each account's bulk imports are processed (bytes per second of Dotdigital's time), as the client
-- learned it: a new run plans its import-status polls by it instead of learning it again with backoff.
CREATE TABLE import_throughput (
    account           TEXT NOT NULL PRIMARY KEY,
    bytes_per_second  DOUBLE PRECISION NOT NULL,
    learned_at        TEXT NOT NULL
);
