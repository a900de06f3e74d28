-- Who works under each lease, so that a lease ends with its holder: the process (pid on host) doing the work,
-- when it took the lease, and its last renewal. A holder on this host whose process is gone, or whose pid now
-- belongs to a process started after the lease was taken, is dead; one on another host is dead once it has not
-- renewed its lease for the lease's time to live. A lease taken before these columns names no process and
-- runs out as before.
ALTER TABLE lease ADD COLUMN pid INTEGER;
ALTER TABLE lease ADD COLUMN host TEXT;
ALTER TABLE lease ADD COLUMN acquired_at TEXT;
ALTER TABLE lease ADD COLUMN renewed_at TEXT;
