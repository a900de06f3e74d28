-- Every send the pipeline executes for a Dynamics row (a campaign send, esc_emailsend, or a triggered send,
-- esc_emailsinglesend) is kept here, so that it happens exactly once whatever fails when. The intent is recorded
-- before each step that acts on Dotdigital, and its result after it:
--   claimed    a run took the row on (nothing done in Dotdigital yet)
--   prepared   the recipients are in the send's own address book (book_id)
--   requested  the send call is under way: whether it happened is asked of Dotdigital before anything else
--   sent       Dotdigital accepted it (send_id, when its answer was heard)
--   settled    its outcome is known (outcome Sent, Failed or Cancelled, message, recipients, date_sent)
-- written_at says the outcome was written back to the Dynamics row. A row set back to Scheduled after a failed
-- attempt was written back is tried again as the next attempt (attempt + 1); no other row is ever sent twice.
CREATE TABLE send_attempt (
    send_key     TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,
    account      TEXT    NOT NULL,
    campaign_id  INTEGER NOT NULL,
    step         TEXT    NOT NULL,
    run_id       TEXT,
    book_id      INTEGER,
    send_id      TEXT,
    recipients   INTEGER,
    excluded     TEXT,
    outcome      TEXT,
    message      TEXT,
    date_sent    TEXT,
    claimed_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    written_at   TEXT,
    PRIMARY KEY (send_key, attempt)
);
CREATE INDEX send_attempt_by_account ON send_attempt (account, step);
