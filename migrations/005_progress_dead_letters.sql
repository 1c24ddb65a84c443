-- Progress rows a flush could not store because the database refused their data (SQLSTATE class
-- 22 data exception or 23 integrity violation: a constraint or trigger added after us, a value
-- the column cannot hold). The flush isolates them by splitting its batch, writes them here in
-- the same transaction as the rows that did commit, and goes on: one bad row never stalls the
-- others. Nothing here is retried automatically; fix the cause, then re-apply or discard by hand.
CREATE TABLE IF NOT EXISTS progress_dead_letters (
    id            BIGSERIAL    PRIMARY KEY,
    namespace     VARCHAR(100) NOT NULL,
    user_id       TEXT         NOT NULL,
    goal_id       TEXT         NOT NULL,
    challenge_id  TEXT         NOT NULL,
    -- The merged entry as the flush had it: 'absolute' (value is the latest) or 'increment'
    -- (value is the sum), how many events it merged, and their summed increase.
    kind          VARCHAR(10)  NOT NULL,
    value         BIGINT       NOT NULL,
    increase      BIGINT       NOT NULL,
    events        INT          NOT NULL,
    -- Ids of this user's events in the flush (those that carried one): every event that may
    -- have contributed to the entry.
    event_ids     TEXT[]       NOT NULL,
    sqlstate      CHAR(5)      NOT NULL,
    reason        TEXT         NOT NULL,
    failed_at     TIMESTAMP    NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC')
);

CREATE INDEX IF NOT EXISTS idx_progress_dead_letters_user ON progress_dead_letters (user_id);
