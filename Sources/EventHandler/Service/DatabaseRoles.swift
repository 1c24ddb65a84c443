import Logging
import ProgressStore
import Storage

/// The two database roles the service can use, and what each needs.
///
/// - The **migration role** (`DB_MIGRATION_USER`, its password in `DB_MIGRATION_PASSWORD_FILE`)
///   runs the migrations: it needs `CREATE` on the schema and owns the tables it creates. Right
///   after migrating, it grants the runtime role what the service does with them (below), so a
///   database set up by the service alone needs no hand-written GRANT.
/// - The **runtime role** (`DB_USER`) serves: it reads and writes rows, and may not create,
///   alter or drop anything.
///
/// Without `DB_MIGRATION_USER`, `DB_USER` does both, as before: it owns what it creates. A
/// runtime role that cannot run DDL still starts when no migration is pending (the check needs
/// only `SELECT` on the bookkeeping); with migrations pending it stops start-up saying so.
enum DatabaseRoles {
    /// The tables the service reads and writes while serving: progress, Kafka positions and
    /// their fencing, the flush commit records (deleted after their retention) and the progress
    /// dead letters (written by flushes, deleted with a user's data).
    static let readWriteTables = [
        ProgressWriter.table, "kafka_checkpoints", "kafka_partition_owners", "flush_commits", "progress_dead_letters",
    ]
    /// Relations it only reads: the per-shard view of the Kafka positions, and the migrations'
    /// bookkeeping (read at start to check that none is pending).
    static let readOnlyRelations = ["kafka_shard_positions", Migrator.table]

    /// Applies the pending migrations on `connection` and returns their versions; then, when
    /// `runtimeUser` is another role, grants it the privileges above. A role without the right to
    /// migrate (SQLSTATE 42501) is fine when nothing is pending; otherwise a `StartupError` says
    /// which migrations are pending and how to apply them.
    static func applyMigrations(
        _ migrator: Migrator, on connection: PostgresConnection, grantingTo runtimeUser: String?, logger: Logger
    ) throws -> [Int] {
        let user = connection.settings.user
        var applied: [Int] = []
        do {
            applied = try migrator.migrate(on: connection)
        } catch where isPermissionDenied(error) {
            let pending: [Int]
            do {
                pending = try migrator.pending(on: connection)
            } catch {
                throw StartupError(
                    "database user \"\(user)\" may not apply migrations (\(error)) and cannot tell whether any is pending. "
                        + remedy)
            }
            guard pending.isEmpty else {
                throw StartupError("migrations \(pending) are pending and database user \"\(user)\" may not apply them: \(error). " + remedy)
            }
            logger.info("no migration pending (database user \"\(user)\" may not run DDL, and needs not)")
        }
        if let runtimeUser, runtimeUser != user {
            try grant(to: runtimeUser, on: connection, except: migrator.externalTables, logger: logger)
        }
        return applied
    }

    static let remedy =
        "Set DB_MIGRATION_USER and DB_MIGRATION_PASSWORD_FILE to a role that may create tables in the schema "
        + "(the service then grants DB_USER what it needs), or run `event-handler migrate` as one."

    /// As the migration role: `USAGE` on the schema, read and write on `readWriteTables` and the
    /// sequences their columns own, read on `readOnlyRelations`, for those that exist. A grant
    /// the migration role may not give (a table another role owns, e.g. the REST service's) is
    /// logged and skipped: `checkPrivileges` reports what the runtime role still lacks.
    static func grant(to role: String, on connection: PostgresConnection, except external: Set<String>, logger: Logger) throws {
        let grantee = quotedIdentifier(role)
        var statements: [String] = []
        if let schema = try connection.execute("SELECT quote_ident(current_schema())")[0, 0] {
            statements.append("GRANT USAGE ON SCHEMA \(schema) TO \(grantee)")
        }
        let tables = readWriteTables.filter { !external.contains($0) }
        for table in try existing(tables, on: connection) {
            statements.append("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE \(table) TO \(grantee)")
        }
        for relation in try existing(readOnlyRelations, on: connection) {
            statements.append("GRANT SELECT ON TABLE \(relation) TO \(grantee)")
        }
        for sequence in try ownedSequences(of: tables, on: connection) {
            statements.append("GRANT USAGE, SELECT ON SEQUENCE \(sequence) TO \(grantee)")
        }
        for statement in statements {
            do {
                try connection.execute(statement)
            } catch let error as PostgresError where error.sqlState == "42501" {
                logger.warning(
                    "cannot grant as the migration role; grant it as the object's owner",
                    metadata: ["statement": "\(statement)", "error": "\(error)"])
            }
        }
        logger.info(
            "runtime role granted its privileges",
            metadata: ["role": "\(role)", "by": "\(connection.settings.user)", "grants": "\(statements.count)"])
    }

    /// What the connected role lacks on the relations above that exist, as "PRIVILEGE on name"
    /// (empty: nothing). Only reads the catalog.
    static func missingPrivileges(on connection: PostgresConnection) throws -> [String] {
        let wanted =
            readWriteTables.flatMap { table in ["SELECT", "INSERT", "UPDATE", "DELETE"].map { (table, $0) } }
            + readOnlyRelations.map { ($0, "SELECT") }
        let values = wanted.map { "('\($0.0)', '\($0.1)')" }.joined(separator: ", ")
        let rows = try connection.execute(
            """
            SELECT w.privilege || ' on ' || w.relation FROM (VALUES \(values)) AS w(relation, privilege)
            WHERE to_regclass(w.relation) IS NOT NULL AND NOT has_table_privilege(to_regclass(w.relation), w.privilege)
            UNION ALL
            SELECT 'USAGE on sequence ' || s.oid::regclass FROM pg_depend AS d
            JOIN pg_class AS s ON s.oid = d.objid AND s.relkind = 'S'
            WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
              AND d.refobjid IN (\(regclasses(readWriteTables)))
              -- In a CASE, so it is asked of sequences only, whatever order the planner picks.
              AND CASE WHEN s.relkind = 'S' THEN NOT has_sequence_privilege(s.oid, 'USAGE') ELSE false END
            """
        ).rows
        return rows.compactMap { $0[0] }
    }

    /// Once at start-up, as `DB_USER`: without the rights to read, insert and update progress
    /// rows the service could store nothing, so start-up stops listing what is missing; any
    /// other missing privilege is logged (the statements needing it would fail later), not
    /// refused, so a deployment that never uses it (no Kafka, no deletions) starts as before.
    static func checkPrivileges(on connection: PostgresConnection, logger: Logger) throws {
        let missing = try missingPrivileges(on: connection)
        guard !missing.isEmpty else { return }
        let user = connection.settings.user
        let fix = "grant them (docs/deploying.md#database-roles-and-tls), or set DB_MIGRATION_USER so the migrations do"
        let essential = ["SELECT", "INSERT", "UPDATE"].map { "\($0) on \(ProgressWriter.table)" }
        if missing.contains(where: essential.contains) {
            throw StartupError("database user \"\(user)\" lacks privileges the service needs: \(missing.joined(separator: ", ")); \(fix)")
        }
        logger.warning(
            "database user \"\(user)\" lacks privileges the service uses; statements needing them will fail",
            metadata: ["missing": "\(missing.joined(separator: ", "))", "fix": "\(fix)"])
    }

    // MARK: - Internals

    /// The error says the role lacks a privilege (SQLSTATE 42501), directly or in a failed migration.
    static func isPermissionDenied(_ error: any Error) -> Bool {
        if let error = error as? PostgresError { return error.sqlState == "42501" }
        if let error = error as? MigrationError { return error.message.contains("[SQLSTATE 42501]") }
        return false
    }

    private static func existing(_ relations: [String], on connection: PostgresConnection) throws -> [String] {
        guard !relations.isEmpty else { return [] }
        return try connection.execute(
            "SELECT r::text FROM unnest(ARRAY[\(regclasses(relations))]) AS r WHERE r IS NOT NULL"
        ).rows.compactMap { $0[0] }
    }

    /// Sequences owned by the tables' columns (`BIGSERIAL`, identity columns).
    private static func ownedSequences(of tables: [String], on connection: PostgresConnection) throws -> [String] {
        guard !tables.isEmpty else { return [] }
        return try connection.execute(
            """
            SELECT DISTINCT d.objid::regclass::text FROM pg_depend AS d
            JOIN pg_class AS s ON s.oid = d.objid AND s.relkind = 'S'
            WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
              AND d.refobjid IN (\(regclasses(tables)))
            """
        ).rows.compactMap { $0[0] }
    }

    /// `to_regclass('a'), to_regclass('b')`: our own constant names, never user input.
    private static func regclasses(_ relations: [String]) -> String {
        relations.map { "to_regclass('\($0)')" }.joined(separator: ", ")
    }

    /// A role name as an SQL identifier: quoted, so its case and characters are kept as libpq
    /// sends them in `user=`.
    static func quotedIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

extension PostgresError {
    /// A TLS or certificate problem no retry fixes: the server's certificate does not verify
    /// (wrong CA, a host name it does not name), a certificate or key file libpq cannot use, a
    /// server without TLS when `DB_SSLMODE` requires it, a server that wants a client certificate.
    var isTLSConfigurationProblem: Bool {
        guard kind == .connect else { return false }
        return ["certificate", "private key", "server does not support SSL"].contains { message.contains($0) }
    }
}

extension EventHandlerService {
    /// Start-up's migration step. With `MIGRATE_ON_START`, applies the pending migrations as the
    /// migration role (a connection of its own, closed at once) when `DB_MIGRATION_USER` is set,
    /// which then grants `DB_USER` its privileges, or as `DB_USER` on `runtime`. Without it,
    /// refuses to go on while any is pending (read on `runtime`: no migration password needed).
    /// Then checks the privileges `DB_USER` has (`DatabaseRoles.checkPrivileges`).
    static func migrate(settings: Settings, runtime: PostgresConnection, logger: Logger) throws {
        let migrator = settings.migrator(logger: logger)
        if settings.migrateOnStart {
            let applied: [Int]
            if let migrationSettings = settings.migrationDatabase {
                let connection = try PostgresConnection(settings: migrationSettings)
                defer { connection.close() }
                applied = try DatabaseRoles.applyMigrations(
                    migrator, on: connection, grantingTo: settings.database.user, logger: logger)
            } else {
                applied = try DatabaseRoles.applyMigrations(migrator, on: runtime, grantingTo: nil, logger: logger)
            }
            if !applied.isEmpty {
                logger.info(
                    "migrations applied",
                    metadata: [
                        "versions": "\(applied)", "from": "\(migrator.source)",
                        "as": "\(settings.migrationDatabase?.user ?? settings.database.user)",
                    ])
            }
        } else {
            let pending: [Int]
            do {
                pending = try migrator.pending(on: runtime)
            } catch where DatabaseRoles.isPermissionDenied(error) {
                throw StartupError(
                    "database user \"\(runtime.settings.user)\" cannot read the migrations' bookkeeping (\(error)): "
                        + "GRANT SELECT ON \(Migrator.table) TO it (docs/deploying.md#database-roles-and-tls)")
            }
            guard pending.isEmpty else {
                throw StartupError(
                    "migrations \(pending) are pending and MIGRATE_ON_START=false: run `event-handler migrate` first")
            }
        }
        if !migrator.externalTables.isEmpty {
            logger.info(
                "leaving tables to another service's migrations (MIGRATE_PROGRESS_TABLE=false)",
                metadata: ["tables": "\(migrator.externalTables.sorted())"])
        }
        try DatabaseRoles.checkPrivileges(on: runtime, logger: logger)
    }
}
