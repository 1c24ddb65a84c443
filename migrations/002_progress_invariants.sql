-- scope: user_goal_progress
-- An invariant of goal progress the writer keeps, also enforced by the table, so no writer (ours,
-- the REST service, a hand-made fix) can store a row that breaks it: a relative goal's baseline
-- is never negative (shown progress is counted from it). Added without a table rewrite:
-- PostgreSQL validates the existing rows once.
ALTER TABLE user_goal_progress
    ADD CONSTRAINT check_baseline_non_negative CHECK (baseline_value IS NULL OR baseline_value >= 0);
