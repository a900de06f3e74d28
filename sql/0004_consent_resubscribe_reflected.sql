-- A resubscribe confirmed in Dotdigital lifts ledger entries (resubscribed_at); reflected_at is when the
-- consent flow then cleared the unsubscribe attribute in Dynamics, so a crash between the two is finished by
-- the next run instead of being forgotten.
ALTER TABLE unsubscribe_ledger ADD COLUMN reflected_at TEXT;
CREATE INDEX unsubscribe_ledger_to_reflect ON unsubscribe_ledger (account, resubscribed_at, reflected_at);
