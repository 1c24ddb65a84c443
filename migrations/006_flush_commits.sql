-- One row per committed flush transaction, written inside it: the flush's commit record.
-- - A flush whose COMMIT got no answer (the connection broke while committing) looks up its row
--   to learn whether it committed, instead of writing its entries again (which would apply
--   them twice) or dropping them.
-- - Deduplication marks a flush's event ids "committing in flush N" in Redis before its COMMIT;
--   a repeat that finds such a mark, left by a process that died, looks up row N: present, the
--   event was applied (a duplicate); absent, it never was (taken over and applied).
-- Rows are kept for DEDUP_TTL plus a margin, then deleted by the service.
CREATE TABLE IF NOT EXISTS flush_commits (
    flush_id     BIGINT    PRIMARY KEY,
    committed_at TIMESTAMP NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC')
);

CREATE INDEX IF NOT EXISTS idx_flush_commits_committed_at ON flush_commits (committed_at);
