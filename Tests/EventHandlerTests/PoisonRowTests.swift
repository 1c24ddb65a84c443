import Foundation
import ServiceTestSupport
import Storage
import TestSupport
import Testing

/// A row the database refuses for its data (here: a CHECK constraint a DBA added after us, the
/// way a real poison row appears) must not stall the rows flushed with it: the flush isolates it,
/// stores it in `progress_dead_letters` with the reason and its events' ids, and commits the rest.
@Suite("Poison rows", .serialized)
struct PoisonRowTests {
    static let constraint = "ALTER TABLE user_goal_progress ADD CONSTRAINT no_poison CHECK (user_id NOT LIKE 'poison-%')"

    /// Good events for 300 users, with 3 poison users' events mixed in.
    struct Mix {
        var events: [TestEvent]
        var good = ExpectedState(catalog: TestCatalog())
        /// Per (user|goal) of a poison user's default-assigned goal: how many events moved it.
        var poisonEvents: [String: Int] = [:]
        var poisonIDs: [String: Set<String>] = [:]

        init(seed: UInt64) {
            let catalog = TestCatalog()
            var (_, events) = makeWorkload(users: 300, count: 6_000, seed: seed)
            var random = SeededGenerator(seed: seed + 1)
            for n in 0..<60 {
                let user = "poison-\(n % 3)"
                // One id carries a quote and a backslash: the dead letter keeps it intact.
                let id = n == 7 ? "poison-event-\(n)-q\"uote\\" : "poison-event-\(n)"
                let event: TestEvent =
                    n % 4 == 0
                    ? .login(id: id, user: user)
                    : .stat(id: id, user: user, code: "stat-\(n % 5)", value: Double(n), inc: 1)
                events.insert(event, at: Int.random(in: 0...events.count, using: &random))
            }
            self.events = events
            for event in events {
                guard event.user.hasPrefix("poison-") else {
                    good.apply(event)
                    continue
                }
                let goals: [TestCatalog.GoalSpec]
                let id: String
                switch event {
                case .login(let eventID, _):
                    goals = catalog.loginGoals
                    id = eventID
                case .stat(let eventID, _, let code, _, _):
                    goals = catalog.goals(forStatCode: code)
                    id = eventID
                }
                for goal in goals where goal.defaultAssigned {
                    poisonEvents["\(event.user)|\(goal.id)", default: 0] += 1
                }
                poisonIDs[event.user, default: []].insert(id)
            }
        }
    }

    /// The dead letters: per (user|goal), the events they account for; per user, the event ids.
    static func deadLetters(_ harness: ServiceHarness) throws -> (events: [String: Int], ids: [String: Set<String>], sqlStates: Set<String>) {
        var events: [String: Int] = [:]
        var ids: [String: Set<String>] = [:]
        var states: Set<String> = []
        for row in try harness.server.query(
            "SELECT user_id, goal_id, events, array_to_string(event_ids, ','), sqlstate, reason FROM progress_dead_letters",
            database: harness.database)
        {
            events["\(row[0]!)|\(row[1]!)", default: 0] += Int(row[2]!)!
            ids[row[0]!, default: []].formUnion(row[3]!.split(separator: ",").map(String.init))
            states.insert(row[4]!)
            #expect(row[5]!.contains("no_poison"), "reason: \(row[5]!)")
        }
        return (events, ids, states)
    }

    static func check(_ harness: ServiceHarness, _ mix: Mix) async throws {
        // Answered is not yet written (buffered mode), and a flush isolating bad rows takes a few
        // statements per row: wait for the flushes in flight to commit.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try differences(expected: mix.good.rows, actual: harness.tableRows()).isEmpty
                && deadLetters(harness).events == mix.poisonEvents
            {
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let diff = differences(expected: mix.good.rows, actual: try harness.tableRows())
        #expect(diff.isEmpty, "\(diff.joined(separator: "\n"))\n--- log ---\n\(harness.process.log.suffix(2_000))")
        let letters = try deadLetters(harness)
        // Every poison entry is accounted for, each of its events once: nothing lost, nothing
        // stored twice.
        #expect(letters.events == mix.poisonEvents)
        #expect(letters.sqlStates == ["23514"])
        for (user, ids) in mix.poisonIDs {
            #expect(ids.isSubset(of: letters.ids[user] ?? []), "ids of \(user) missing from its dead letters")
        }
        #expect(letters.ids.keys.allSatisfy { $0.hasPrefix("poison-") })
        let count = try harness.server.query("SELECT count(*) FROM progress_dead_letters", database: harness.database)[0][0]!
        // The counter moves just after the commit that stored them.
        let metrics = try await harness.http.waitForMetrics(timeout: .seconds(10)) {
            $0.value("flush_dead_lettered_entries_total") == Double(count)
        }
        #expect(metrics.value("flush_dead_lettered_entries_total") == Double(count))
        #expect(harness.process.log.contains("set aside in progress_dead_letters"))
    }

    @Test("gRPC: the bad rows go to progress_dead_letters with their event ids and reason; every good row lands; their retries are duplicates", .timeLimit(.minutes(5)))
    func grpcPoisonRows() async throws {
        let mix = Mix(seed: 2_026_112_501)
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: TestCatalog().json, environment: ["BUFFER_FLUSH_INTERVAL": "100ms"],
            prepare: { try $0.execute(Self.constraint) })
        try await harness.withClients { login, stat in
            try await withThrowingTaskGroup(of: Void.self) { group in
                // 8 senders, each owning the users hashed to it: a user's events stay in order.
                for lane in 0..<8 {
                    let mine = mix.events.filter { $0.user.utf8.reduce(0) { $0 &+ Int($1) } % 8 == lane }
                    group.addTask { for event in mine { try await event.send(login: login, stat: stat) } }
                }
                try await group.waitForAll()
            }
        }
        try await Self.check(harness, mix)
        // The bridge retries: the poison events come again with the same ids. Their flush
        // committed (set aside), so they are duplicates, not new dead letters.
        let before = try harness.server.query("SELECT count(*) FROM progress_dead_letters", database: harness.database)[0][0]!
        try await harness.withClients { login, stat in
            for event in mix.events where event.user.hasPrefix("poison-") {
                try await event.send(login: login, stat: stat)
            }
        }
        let retried = try await harness.http.waitForMetrics {
            $0.sum("dedup_duplicates_total") >= Double(mix.poisonIDs.values.reduce(0) { $0 + $1.count })
        }
        #expect(retried.value("event_buffer_size") == 0)
        #expect(try harness.stop() == 0)
        let after = try harness.server.query("SELECT count(*) FROM progress_dead_letters", database: harness.database)[0][0]!
        #expect(try Self.deadLetters(harness).events == mix.poisonEvents)
        #expect(before == after)
    }

    @Test("Kafka: the bad rows are set aside inside the flush's transaction; the partitions go on and the checkpoints stay exact across a restart", .timeLimit(.minutes(5)))
    func kafkaPoisonRows() async throws {
        let broker = try DevKafkaProcess(topics: [KafkaIngestionTests.loginTopic, KafkaIngestionTests.statTopic], partitions: 2)
        defer { broker.stop() }
        let mix = Mix(seed: 2_026_112_502)
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: TestCatalog().json,
            environment: KafkaIngestionTests.environment(broker, group: "poison"),
            prepare: { try $0.execute(Self.constraint) })
        try KafkaIngestionTests.produce(mix.events, to: broker)
        try await KafkaIngestionTests.waitReceived([harness.http], events: mix.events.count, timeout: .seconds(120))
        _ = try await harness.http.waitForMetrics { $0.value("event_buffer_size") == 0 }
        try await Self.check(harness, mix)
        #expect(try harness.stop() == 0)
        // A new instance starts from the checkpoints: nothing is read again, nothing set aside again.
        let (again, http) = try harness.startInstance()
        try await KafkaIngestionTests.waitDrained([http], partitions: 4, timeout: .seconds(60))
        again.signal(SIGTERM)
        #expect(try again.waitForExit() == 0)
        let letters = try Self.deadLetters(harness)
        #expect(letters.events == mix.poisonEvents)
        let diff = differences(expected: mix.good.rows, actual: try harness.tableRows())
        #expect(diff.isEmpty, "\(diff.joined(separator: "\n"))")
    }
}
