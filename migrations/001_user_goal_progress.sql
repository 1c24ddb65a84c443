-- scope: user_goal_progress
-- The incumbent handler's table, column for column, so its REST service keeps working.
-- Timestamps are TIMESTAMP (without time zone) holding UTC, as the incumbent wrote them.
--
-- The REST service (extend-challenge-service) may have created this table already, with its own
-- constraint and index names. Everything below is therefore idempotent and compares by meaning,
-- not by name: a constraint or index already present with the same definition under another
-- name is not added again (a duplicate index on this write-hot table would cost every flush).
-- With MIGRATE_PROGRESS_TABLE=false the service skips this file and leaves the table to the
-- REST service.
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
    PRIMARY KEY (user_id, goal_id)
)
-- Every flush rewrites rows in place; free space on each page lets PostgreSQL keep the new
-- version on the same page (a HOT update) when no indexed column changes, which is the common
-- case (progress and updated_at are not indexed).
WITH (fillfactor = 80);

-- The constraints and the tuning guide's indexes, each added unless the table already has one
-- with the same definition. "The same definition" is PostgreSQL's own rendering of it: each is
-- first created on an empty scratch copy of the table, and its rendered text (without the name)
-- is looked for among the table's own. Only the tuning guide's indexes: the primary key already
-- serves lookups by user_id and by (user_id, goal_id), and every further index on this table
-- costs each flush and blocks HOT updates for the columns it covers.
DO $migration$
DECLARE
    wanted  record;
    shape   text;
BEGIN
    CREATE TEMP TABLE event_handler_progress_shape (LIKE user_goal_progress) ON COMMIT DROP;

    FOR wanted IN SELECT * FROM (VALUES
        ('check_progress_non_negative', 'CHECK (progress >= 0)'),
        ('check_status_valid', $$CHECK (status IN ('not_started', 'in_progress', 'completed', 'claimed'))$$),
        ('check_claimed_requires_completed_at', $$CHECK (status <> 'claimed' OR completed_at IS NOT NULL)$$),
        ('check_completed_requires_completed_at', $$CHECK (status <> 'completed' OR completed_at IS NOT NULL)$$)
    ) AS constraints (name, definition)
    LOOP
        EXECUTE format('ALTER TABLE event_handler_progress_shape ADD CONSTRAINT %I %s', wanted.name, wanted.definition);
        SELECT pg_get_constraintdef(oid) INTO shape FROM pg_constraint
            WHERE conrelid = 'event_handler_progress_shape'::regclass AND conname = wanted.name;
        IF EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'user_goal_progress'::regclass AND pg_get_constraintdef(oid) = shape) THEN
            RAISE NOTICE 'constraint % already present (same definition)', wanted.name;
        ELSIF EXISTS (SELECT 1 FROM pg_constraint
                      WHERE conrelid = 'user_goal_progress'::regclass AND conname = wanted.name) THEN
            RAISE EXCEPTION 'user_goal_progress has a constraint named % with another definition', wanted.name;
        ELSE
            EXECUTE format('ALTER TABLE user_goal_progress ADD CONSTRAINT %I %s', wanted.name, wanted.definition);
        END IF;
    END LOOP;

    FOR wanted IN SELECT * FROM (VALUES
        ('idx_user_challenge', '(user_id, challenge_id)'),
        ('idx_completed_unclaimed', $$(user_id, status) WHERE status = 'completed' AND claimed_at IS NULL$$)
    ) AS indexes (name, definition)
    LOOP
        EXECUTE format('CREATE INDEX %I ON event_handler_progress_shape %s', wanted.name, wanted.definition);
        SELECT substring(pg_get_indexdef(indexrelid) FROM ' USING .*') INTO shape FROM pg_index
            WHERE indexrelid = (SELECT oid FROM pg_class
                                WHERE relname = wanted.name AND relnamespace = pg_my_temp_schema());
        IF EXISTS (SELECT 1 FROM pg_index
                   WHERE indrelid = 'user_goal_progress'::regclass
                     AND substring(pg_get_indexdef(indexrelid) FROM ' USING .*') = shape) THEN
            RAISE NOTICE 'index % already present (same columns and predicate)', wanted.name;
        ELSE
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON user_goal_progress %s', wanted.name, wanted.definition);
        END IF;
    END LOOP;

    DROP TABLE event_handler_progress_shape;
END
$migration$;
