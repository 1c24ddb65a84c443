/// The database as the incumbent's REST service (extend-challenge-service) leaves it after its
/// golang-migrate run at start: its two migrations applied, golang-migrate's bookkeeping row,
/// `user_goal_progress` with the REST service's constraint and index names. Written from the
/// facts its migrations state (issue 20), not copied from them: what our migrations must find
/// and leave alone.
public enum RestServiceSchema {
    /// 001_create_user_goal_progress: the table (no IF NOT EXISTS: it fails if the table exists).
    public static let createTable = """
        CREATE TABLE user_goal_progress (
            user_id VARCHAR(100) NOT NULL,
            goal_id VARCHAR(100) NOT NULL,
            challenge_id VARCHAR(100) NOT NULL,
            namespace VARCHAR(100) NOT NULL,
            progress INT NOT NULL DEFAULT 0,
            status VARCHAR(20) NOT NULL DEFAULT 'not_started',
            completed_at TIMESTAMP NULL,
            claimed_at TIMESTAMP NULL,
            created_at TIMESTAMP NOT NULL DEFAULT NOW(),
            updated_at TIMESTAMP NOT NULL DEFAULT NOW(),
            is_active BOOLEAN NOT NULL DEFAULT true,
            assigned_at TIMESTAMP NULL,
            expires_at TIMESTAMP NULL,
            PRIMARY KEY (user_id, goal_id),
            CONSTRAINT check_status CHECK (status IN ('not_started', 'in_progress', 'completed', 'claimed')),
            CONSTRAINT check_progress_non_negative CHECK (progress >= 0),
            CONSTRAINT check_claimed_implies_completed CHECK (claimed_at IS NULL OR completed_at IS NOT NULL)
        );
        """

    /// The five indexes of its 001, by name.
    public static let indexes = [
        "idx_user_goal_progress_user_challenge": "CREATE INDEX idx_user_goal_progress_user_challenge ON user_goal_progress (user_id, challenge_id)",
        "idx_user_goal_progress_user_active": "CREATE INDEX idx_user_goal_progress_user_active ON user_goal_progress (user_id, is_active) WHERE is_active = true",
        "idx_user_goal_count": "CREATE INDEX idx_user_goal_count ON user_goal_progress (user_id)",
        "idx_user_goal_lookup": "CREATE INDEX idx_user_goal_lookup ON user_goal_progress (user_id, goal_id)",
        "idx_user_goal_active_only": "CREATE INDEX idx_user_goal_active_only ON user_goal_progress (user_id) WHERE is_active = true",
    ]

    /// 002_add_baseline_value.
    public static let addBaseline = "ALTER TABLE user_goal_progress ADD COLUMN baseline_value INT NULL;"

    /// golang-migrate's table and the row it leaves: the latest version, not dirty.
    public static let bookkeeping = """
        CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
        INSERT INTO schema_migrations (version, dirty) VALUES (2, false);
        """

    /// The REST service's 001 (table and indexes), as one script.
    public static var migration001: String {
        createTable + "\n" + indexes.values.sorted().map { $0 + ";" }.joined(separator: "\n")
    }

    /// Everything, as the REST service leaves a fresh database.
    public static var all: String {
        migration001 + "\n" + addBaseline + "\n" + bookkeeping
    }

    /// `SELECT` of every index definition on `user_goal_progress` without its name (what makes
    /// two indexes equivalent), one row per index: (name, definition from " USING").
    public static let indexDefinitionsQuery = """
        SELECT c.relname, substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*')
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'user_goal_progress'::regclass ORDER BY 1
        """
}
