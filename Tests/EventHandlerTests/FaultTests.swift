import Foundation
import GRPCCore
import ServiceTestSupport
import Storage
import TestSupport
import Testing

/// Failures the service must ride out without losing or double-counting anything.
@Suite("Faults", .serialized)
struct FaultTests {
    @Test("database down: flushes keep their entries and retry, the buffer pushes back at its limit, all lands after the restart", .timeLimit(.minutes(5)))
    func databaseOutage() async throws {
        let server = try PostgresServer()
        defer { server.shutdown() }
        let catalog = TestCatalog()
        // A login moves 20 goals: a limit of 100 entries holds 5 new users' logins.
        let harness = try ServiceHarness(
            server: server, catalogJSON: catalog.json,
            environment: [
                "BUFFER_SIZE_LIMIT": "100", "BUFFER_FLUSH_INTERVAL": "100ms", "FLUSH_WORKERS": "1",
                "DB_MAX_OPEN_CONNS": "2", "DB_MAX_IDLE_CONNS": "1", "DB_CONNECT_TIMEOUT": "1s",
            ])
        var model = ExpectedState(catalog: catalog)
        var sent = 0

        func login(_ user: String) -> TestEvent {
            sent += 1
            return .login(id: "outage-\(sent)", user: user)
        }

        try await harness.withClients { loginClient, statClient in
            // Before: events land as usual.
            for i in 0..<3 {
                let event = login("before-\(i)")
                try await event.send(login: loginClient, stat: statClient)
                model.apply(event)
            }
        }
        // Wait until they are written, then take the database away.
        let deadline = ContinuousClock.now + .seconds(30)
        while try harness.tableRows().count < model.rows.count && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        try server.stop()

        let refused: TestEvent = try await harness.withClients { loginClient, statClient in
            // During: new users fill the buffer to its limit; the next one is pushed back whole.
            var n = 0
            while true {
                let event = login("during-\(n)")
                n += 1
                do {
                    try await event.send(login: loginClient, stat: statClient)
                    model.apply(event)
                    // A repeat login of an accepted user only merges: always taken, even when full.
                    let again = login("during-0")
                    try await again.send(login: loginClient, stat: statClient)
                    model.apply(again)
                } catch let error as RPCError {
                    #expect(error.code == .resourceExhausted, "\(error)")
                    return event
                }
                if n > 50 { Issue.record("never pushed back"); return event }
            }
        }
        #expect(sent >= 10)
        try harness.process.waitForLog("flush failed, entries kept in the buffer", timeout: .seconds(30))
        // What an operator sees meanwhile: the buffer at its limit, flushes failing, one
        // back-pressure episode, the refused event counted by its reason.
        // (A failing flush holds the entries for a moment between drain and restore: wait for a
        // sample outside that window.)
        let outage = try await harness.http.waitForMetrics {
            ($0.value("flush_consecutive_failures") ?? 0) > 0 && $0.value("event_buffer_size") == 100
        }
        #expect((outage.value("flush_failures_total") ?? 0) > 0)
        #expect(outage.value("buffer_backpressure_activations_total") == 1)
        #expect(outage.value("events_rejected_total", ["source": "grpc", "type": "login", "reason": "buffer_full"]) == 1)

        try server.start()
        try await harness.withClients { loginClient, statClient in
            // After: the refused event is delivered again (as the bridge does) and lands once.
            let deadline = ContinuousClock.now + .seconds(60)
            while true {
                do {
                    try await refused.send(login: loginClient, stat: statClient)
                    model.apply(refused)
                    break
                } catch let error as RPCError where error.code == .resourceExhausted && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            for i in 0..<3 {
                let event = login("after-\(i)")
                try await event.send(login: loginClient, stat: statClient)
                model.apply(event)
            }
        }
        try harness.process.waitForLog("database writes succeed again", timeout: .seconds(60))
        let recovered = try await harness.http.waitForMetrics { $0.value("event_buffer_size") == 0 }
        #expect(recovered.value("flush_consecutive_failures") == 0)
        #expect(try harness.stop() == 0)
        let diff = differences(expected: model.rows, actual: try harness.tableRows())
        #expect(diff.isEmpty, "\(diff.joined(separator: "\n"))\n--- log ---\n\(harness.process.log.suffix(3_000))")
    }

    /// Holds every flush's COMMIT until the test lets it go: a deferred trigger on its commit
    /// record, run at COMMIT time, waits for advisory lock `commitGate`, which the test holds.
    /// (A gate rather than a timed sleep: a test that has to catch a COMMIT inside a one-second
    /// window misses it on a loaded machine.)
    static let commitGate: Int64 = 4_242
    static let commitGateTrigger = """
        CREATE FUNCTION gate_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock_shared(\(commitGate)); RETURN NULL; END $$;
        CREATE CONSTRAINT TRIGGER gate_commit AFTER INSERT ON flush_commits
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION gate_commit();
        """

    @Test("the connection breaks during COMMIT: the flush asks its commit record, so a commit that landed is not written again and one that did not is; exact", .timeLimit(.minutes(5)))
    func commitOutcomeUnknown() async throws {
        let catalog = TestCatalog()
        let server = PostgresServer.shared
        let proxy = try TCPProxy(upstreamPort: server.port)
        defer { proxy.close() }
        let harness = try ServiceHarness(
            server: server, catalogJSON: catalog.json,
            environment: [
                "DB_PORT": String(proxy.port), "FLUSH_WORKERS": "1", "BUFFER_FLUSH_INTERVAL": "100ms",
                "DB_CONNECT_TIMEOUT": "2s",
            ],
            prepare: { try $0.execute(Self.commitGateTrigger) })
        // The gate's session: straight to the server, not through the proxy the test cuts.
        let gate = try PostgresConnection(settings: server.settings(database: harness.database))
        defer { gate.close() }
        var model = ExpectedState(catalog: catalog)

        /// Closes the gate, sends `count` logins, waits until their flush sits in its COMMIT at
        /// the gate, breaks it with `cut`, and waits for the flush to say what it learnt, opening
        /// the gate before that (`holdUntilAnswered` false) or after.
        func round(_ name: String, count: Int, holdUntilAnswered: Bool, expect: String, cut: () throws -> Void) async throws {
            _ = try gate.execute("SELECT pg_advisory_lock(\(Self.commitGate))")
            var gateOpen = false
            defer { if !gateOpen { _ = try? gate.execute("SELECT pg_advisory_unlock(\(Self.commitGate))") } }
            try await harness.withClients { login, stat in
                for n in 0..<count {
                    let event = TestEvent.login(id: "\(name)-\(n)", user: "\(name)-user-\(n % 7)")
                    try await event.send(login: login, stat: stat)
                    model.apply(event)
                }
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while try server.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(harness.database)' AND query = 'COMMIT' AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
            )[0][0] != "1" {
                guard ContinuousClock.now < deadline else {
                    throw TestFailure("\(name): no flush ever sat in its COMMIT\n--- log ---\n\(harness.process.log.suffix(3_000))")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            try cut()
            func openGate() throws {
                _ = try gate.execute("SELECT pg_advisory_unlock(\(Self.commitGate))")
                gateOpen = true
            }
            if !holdUntilAnswered { try openGate() }
            do {
                try harness.process.waitForLog(expect, timeout: .seconds(30))
            } catch {
                throw TestFailure("\(name): \(error)\n--- log ---\n\(harness.process.log.suffix(3_000))")
            }
            if holdUntilAnswered { try openGate() }
        }

        // The network drops while the server commits: the commit lands (at once, when the gate
        // opens), the answer is lost.
        try await round("landed", count: 40, holdUntilAnswered: false, expect: "the flush had committed") {
            #expect(proxy.dropConnections() > 0)
        }
        // The network drops and the session stays busy past the flush's patience (2 s, the gate
        // stays closed until the flush has answered): the flush ends that session, so its transaction never commits, and writes the entries again.
        try await round("rolled-back", count: 40, holdUntilAnswered: true, expect: "the flush had not committed") {
            #expect(proxy.dropConnections() > 0)
        }
        try await DeduplicationTests.waitForTable(harness, model)
        let diff = differences(expected: model.rows, actual: try harness.tableRows())
        #expect(diff.isEmpty, "\(diff.joined(separator: "\n"))\n--- log ---\n\(harness.process.log.suffix(3_000))")
        #expect(try harness.stop() == 0)
    }
}

/// Settings are checked before anything starts, and a bad one is named.
@Suite("Configuration")
struct ConfigurationTests {
    static func checkConfig(_ environment: [String: String]) throws -> (status: Int32, log: String) {
        var env = ["AB_NAMESPACE": "ns", "CONFIG_PATH": PostgresServer.repositoryRoot + "/config/challenges.json"]
        env.merge(environment) { $1 }
        let process = try ServiceProcess(arguments: ["check-config"], environment: env.filter { !$0.value.isEmpty })
        return (try process.waitForExit(timeout: .seconds(30)), process.log)
    }

    @Test("the shipped configuration is valid")
    func valid() throws {
        let (status, log) = try Self.checkConfig([:])
        #expect(status == 0, "\(log)")
        #expect(log.contains("configuration OK"))
    }

    @Test("the incumbent's sample configuration, legacy keys included, loads with warnings naming them")
    func legacySample() throws {
        let (status, log) = try Self.checkConfig(["CONFIG_PATH": PostgresServer.repositoryRoot + "/config/challenges.legacy.json"])
        #expect(status == 0, "\(log)")
        #expect(log.contains("legacy goal key \"type\" is ignored"), "\(log)")
        #expect(log.contains("legacy goal key \"daily\" is ignored"), "\(log)")
        #expect(log.contains("configuration OK"))
    }

    @Test("a broken rotation rule stops start-up naming the file, the goal and the field")
    func brokenRotation() throws {
        let path = NSTemporaryDirectory() + "rotation-\(UUID()).json"
        try #"{"challenges": [{"challengeId": "c", "name": "C", "goals": [{"goalId": "daily-kills", "name": "G", "eventSource": "statistic", "defaultAssigned": true, "requirement": {"statCode": "kills", "operator": ">=", "targetValue": 5}, "reward": {"type": "ITEM", "rewardId": "r", "quantity": 1}, "prerequisites": [], "rotation": {"enabled": true, "type": "global", "schedule": "hourly", "onExpiry": {"resetProgress": true, "allowReselection": false}}}]}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, log) = try Self.checkConfig(["CONFIG_PATH": path])
        #expect(status == 2)
        #expect(log.contains(path), "\(log)")
        #expect(log.contains("daily-kills"), "\(log)")
        #expect(log.contains("rotation.schedule"), "\(log)")
        #expect(log.contains("progressMode"), "an enabled rotation on an absolute goal is named too: \(log)")
    }

    @Test("LOG_FORMAT=json: one JSON object per line with time, level, logger and message; control characters escaped")
    func jsonLogs() throws {
        let path = NSTemporaryDirectory() + "json-log-\(UUID()).json"
        // An unknown key holding a newline: logged in a warning, it must not break the line.
        try #"{"challenges": [{"challengeId": "c", "name": "C", "goals": [{"goalId": "g", "name": "G", "eventSource": "login", "defaultAssigned": true, "requirement": {"operator": ">=", "targetValue": 3}, "reward": {"type": "ITEM", "rewardId": "r", "quantity": 1}, "prerequisites": [], "odd\nkey": 1}]}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, log) = try Self.checkConfig(["CONFIG_PATH": path, "LOG_FORMAT": "json"])
        #expect(status == 0, "\(log)")
        let lines = log.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.count == 1, "\(log)")
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] as? String == "warning")
            #expect((object?["time"] as? String)?.hasSuffix("Z") == true)
            // Escaped by the catalog's quoting too: the message holds a backslash and an n.
            #expect((object?["message"] as? String)?.contains("unknown key \"odd\\nkey\"") == true, "\(line)")
        }
    }

    @Test("a bad value stops start-up with a message naming the variable", arguments: [
        ("AB_NAMESPACE", ""),
        ("BUFFER_FLUSH_INTERVAL", "soon"),
        ("BUFFER_FLUSH_INTERVAL", "0s"),
        ("BUFFER_SIZE_LIMIT", "-5"),
        ("GRPC_PORT", "70000"),
        ("METRICS_PORT", "http"),
        ("METRICS_PORT", "6565"),  // the default GRPC_PORT
        ("DB_MAX_IDLE_CONNS", "50"),
        ("FLUSH_WORKERS", "0"),
        ("DB_SSLMODE", "maybe"),
        ("ACK_MODE", "eventually"),
        ("REDIS_URL", "localhost:6379"),
        ("REDIS_URL", "redis://cache:99999"),
        ("DEDUP_TTL", "forever"),
        ("DEDUP_LEASE", "1s"),
        ("DEDUP_FAIL_MODE", "maybe"),
        ("LOG_LEVEL", "loud"),
        ("MIGRATE_ON_START", "perhaps"),
        ("DB_CONN_MAX_LIFETIME", "30 minutes"),
        ("DEDUP_TTL", "3000000h"),  // past what a Duration holds: crashed before
        ("BUFFER_FLUSH_INTERVAL", "9000h"),
        ("LOG_FORMAT", "xml"),
        ("MIGRATE_PROGRESS_TABLE", "maybe"),
    ])
    func badValue(variable: String, value: String) throws {
        let (status, log) = try Self.checkConfig([variable: value])
        #expect(status == 2, "\(variable)=\(value): \(log)")
        #expect(log.contains("configuration error: \(variable)"), "\(variable)=\(value): \(log)")
    }

    @Test("an invalid challenges file stops start-up naming the file")
    func badChallenges() throws {
        let path = NSTemporaryDirectory() + "bad-\(UUID()).json"
        try #"{"challenges": [{"challengeId": "c", "name": "C", "goals": [{"goalId": "g", "name": "G", "eventSource": "statistic", "defaultAssigned": true, "requirement": {"statCode": "s", "operator": ">=", "targetValue": 0}, "reward": {"type": "ITEM", "rewardId": "r", "quantity": 1}, "prerequisites": [], "colour": "red"}]}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, log) = try Self.checkConfig(["CONFIG_PATH": path])
        #expect(status == 2)
        #expect(log.contains(path) && log.contains("targetValue"), "\(log)")
    }

    @Test("a challenges file with keys the incumbent ignores, at every level, starts with one warning per key")
    func unknownKeysAtEveryLevel() throws {
        let path = NSTemporaryDirectory() + "unknown-keys-\(UUID()).json"
        try #"{"version": 2, "challenges": [{"challengeId": "c", "name": "C", "theme": "dark", "goals": [{"goalId": "g", "challengeId": "c", "name": "G", "eventSource": "statistic", "defaultAssigned": true, "requirement": {"statCode": "s", "operator": ">=", "targetValue": 3, "unit": "kills"}, "reward": {"type": "ITEM", "rewardId": "r", "quantity": 1, "rarity": "epic"}, "prerequisites": [], "icon": "g.png"}]}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, log) = try Self.checkConfig(["CONFIG_PATH": path])
        #expect(status == 0, "\(log)")
        for key in ["version", "theme", "challengeId", "requirement.unit", "reward.rarity", "icon"] {
            #expect(log.components(separatedBy: "unknown key \"\(key)\" ignored").count == 2, "one warning for \(key): \(log)")
        }
        #expect(log.contains("configuration OK"))
        let (_, sample) = try Self.checkConfig([:])
        #expect(!sample.contains("warning"), "the project's sample loads with no warning: \(sample)")
    }
}
