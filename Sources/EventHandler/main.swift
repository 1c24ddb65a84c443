import Foundation
import Logging
import Storage
import Catalog

/// `event-handler [serve | migrate | check-config | help]`
///
/// - `serve` (default): run the service.
/// - `migrate`: apply pending migrations in `MIGRATIONS_PATH` to the configured database and exit.
/// - `check-config`: read `.env`, the environment and `CONFIG_PATH`, report problems, exit.
let arguments = Array(CommandLine.arguments.dropFirst())
let command = arguments.first ?? "serve"

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("event-handler: \(message)\n".utf8))
    exit(2)
}

let usage = """
    usage: event-handler [serve | migrate | check-config | help]
      serve         run the service (the default)
      migrate       apply pending migrations to the configured database, then exit
      check-config  validate .env, the environment and the challenges file, then exit
    Settings come from .env (or the file ENV_FILE names) and the environment, which wins;
    .env.example lists them all.
    """

guard ["serve", "migrate", "check-config"].contains(command) else {
    if ["help", "-h", "--help"].contains(command) {
        print(usage)
        exit(0)
    }
    fail("unknown command \"\(command)\"\n\(usage)")
}

let settings: Settings
do {
    settings = try Settings.load(requireNamespace: command != "migrate")
} catch {
    fail("\(error)")
}

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
let logger = Logger(label: "event-handler")

switch command {
case "migrate":
    do {
        let connection = try PostgresConnection(settings: settings.database)
        defer { connection.close() }
        let migrator = settings.migrator(logger: logger)
        let applied = try migrator.migrate(on: connection)
        logger.info("migrations done", metadata: ["applied": "\(applied)", "from": "\(migrator.source)"])
        exit(0)
    } catch {
        fail("migrate: \(error)")
    }
case "check-config":
    do {
        let loaded = try Catalog.load(path: settings.challengesPath)
        for warning in loaded.warnings { logger.warning("\(warning)") }
        print("configuration OK: \(settings.summary); \(loaded.catalog.goals.count) goals")
        exit(0)
    } catch {
        fail("\(error)")
    }
default:
    logger.info("starting", metadata: ["settings": "\(settings.summary)"])
    do {
        let code = try await EventHandlerService(settings: settings, logger: logger).run()
        exit(code)
    } catch {
        logger.critical("cannot start: \(error)")
        exit(1)
    }
}
