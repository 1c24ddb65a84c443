import Catalog
import Foundation
import Logging
import Storage

/// `event-handler [serve | migrate | check-config | help]`, the whole command line: the
/// executable (`Sources/EventHandlerMain`) only hands it the arguments and exits with its code.
///
/// - `serve` (default): run the service.
/// - `migrate`: apply pending migrations in `MIGRATIONS_PATH` to the configured database and exit.
/// - `check-config`: read `.env`, the environment and `CONFIG_PATH`, report problems, exit.
public enum EventHandlerCommand {
    static let usage = """
        usage: event-handler [serve | migrate | check-config | help]
          serve         run the service (the default)
          migrate       apply pending migrations to the configured database, then exit
          check-config  validate .env, the environment and the challenges file, then exit
        Settings come from .env (or the file ENV_FILE names) and the environment, which wins;
        .env.example lists them all.
        """

    /// Runs the command `arguments` name (without the program name) and returns the process's
    /// exit code: 0 done, 1 could not start or left entries unwritten, 2 a usage or
    /// configuration error, 75 fenced by another consumer-group member.
    public static func run(_ arguments: [String]) async -> Int32 {
        let command = arguments.first ?? "serve"
        guard ["serve", "migrate", "check-config"].contains(command) else {
            if ["help", "-h", "--help"].contains(command) {
                print(usage)
                return 0
            }
            return fail("unknown command \"\(command)\"\n\(usage)")
        }

        let settings: Settings
        do {
            settings = try Settings.load(requireNamespace: command != "migrate")
        } catch {
            return fail("\(error)")
        }
        bootstrapLogging(settings)
        let logger = Logger(label: "event-handler")

        switch command {
        case "migrate":
            do {
                // As the migration role when one is set (DB_MIGRATION_USER), which then grants
                // DB_USER what the service needs; otherwise as DB_USER.
                let connection = try PostgresConnection(settings: settings.migrationDatabase ?? settings.database)
                defer { connection.close() }
                let migrator = settings.migrator(logger: logger)
                let applied = try DatabaseRoles.applyMigrations(
                    migrator, on: connection, grantingTo: settings.migrationDatabase.map { _ in settings.database.user },
                    logger: logger)
                logger.info(
                    "migrations done",
                    metadata: ["applied": "\(applied)", "from": "\(migrator.source)", "as": "\(connection.settings.user)"])
                return 0
            } catch {
                return fail("migrate: \(error)")
            }
        case "check-config":
            do {
                let loaded = try Catalog.load(path: settings.challengesPath)
                for warning in loaded.warnings { logger.warning("\(warning)") }
                print("configuration OK: \(settings.summary); \(loaded.catalog.goals.count) goals")
                return 0
            } catch {
                return fail("\(error)")
            }
        default:
            logger.info("starting", metadata: ["settings": "\(settings.summary)"])
            do {
                return try await EventHandlerService(settings: settings, logger: logger).run()
            } catch {
                logger.critical("cannot start: \(error)")
                return 1
            }
        }
    }

    /// A usage or configuration error: one line on standard error, exit code 2.
    private static func fail(_ message: String) -> Int32 {
        FileHandle.standardError.write(Data("event-handler: \(message)\n".utf8))
        return 2
    }

    /// Text or JSON lines on standard error, at `LOG_LEVEL`.
    private static func bootstrapLogging(_ settings: Settings) {
        LoggingSystem.bootstrap { label in
            switch settings.logFormat {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = settings.logLevel
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = settings.logLevel
                return handler
            }
        }
    }
}
