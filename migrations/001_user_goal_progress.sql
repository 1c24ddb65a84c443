-- The incumbent handler's table, column for column, so its REST service keeps working.
-- Timestamps are TIMESTAMP (without time zone) holding UTC, as the incumbent wrote them.
CREATE TABLE IF NOT EXISTS user_goal_progress (
    user_id        VARCHAR(100) NOT NULL,
    goal_id        VARCHAR(100) NOT NULL,
    challenge_id   VARCHAR(100) NOT NULL,
    namespace      VARCHAR(100) NOT NULL,
    progress       INT          NOT NULL DEFAULT 0,
    status         VARCHAR(20)  NOT NULL DEFAULT 'not_started',
    completed_at   TIMESTAMP    NULL,
    claimed_at     TIMESTAMP    NULL,
    created_at     TIMESTAMP    NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC'),
    updated_at     TIMESTAMP    NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC'),
    is_active      BOOLEAN      NOT NULL DEFAULT true,
    assigned_at    TIMESTAMP    NULL,
    expires_at     TIMESTAMP    NULL,
    baseline_value INT          NULL,
    PRIMARY KEY (user_id, goal_id),
    CONSTRAINT check_progress_non_negative CHECK (progress >= 0),
    CONSTRAINT check_status_valid
        CHECK (status IN ('not_started', 'in_progress', 'completed', 'claimed')),
    CONSTRAINT check_claimed_requires_completed_at
        CHECK (status <> 'claimed' OR completed_at IS NOT NULL),
    CONSTRAINT check_completed_requires_completed_at
        CHECK (status <> 'completed' OR completed_at IS NOT NULL)
)
-- Every flush rewrites rows in place; free space on each page lets PostgreSQL keep the new
-- version on the same page (a HOT update) when no indexed column changes, which is the common
-- case (progress and updated_at are not indexed).
WITH (fillfactor = 80);

-- The tuning guide's indexes, and nothing else: the primary key already serves lookups by
-- user_id and by (user_id, goal_id); every further index on this write-hot table costs each
-- flush and blocks HOT updates for the columns it covers.
CREATE INDEX IF NOT EXISTS idx_user_challenge
    ON user_goal_progress (user_id, challenge_id);

CREATE INDEX IF NOT EXISTS idx_completed_unclaimed
    ON user_goal_progress (user_id, status)
    WHERE status = 'completed' AND claimed_at IS NULL;
