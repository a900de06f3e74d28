-- Work a long run has finished, so that the same run retried or re-executed from failure (same root run)
-- resumes after it instead of starting over: per stream of work (an asset and an account) and item (a
-- campaign).
CREATE TABLE run_progress (
    run_key  TEXT NOT NULL,
    stream   TEXT NOT NULL,
    item     TEXT NOT NULL,
    done_at  TEXT NOT NULL,
    PRIMARY KEY (run_key, stream, item)
);
