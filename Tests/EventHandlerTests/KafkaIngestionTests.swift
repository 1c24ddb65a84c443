import Foundation
import ServiceTestSupport
import Storage
import TestSupport
import Testing

/// Kafka ingestion end to end: dev-kafka as the broker, kcat as the independent producer, the
/// real service consuming, and the table compared with the independent model row for row.
@Suite("Kafka ingestion", .serialized)
struct KafkaIngestionTests {
    static let loginTopic = "test-ns.iam.account.v1.userLoggedIn"
    static let statTopic = "test-ns.social.statistic.v1.statItemUpdated"

    /// The record kcat produces for an event: key (the user id) TAB proto3 JSON.
    static func record(_ event: TestEvent) -> (topic: String, line: String) {
        switch event {
        case .login(let id, let user):
            return (
                loginTopic,
                "\(user)\t{\"id\":\(json(id)),\"namespace\":\"test-ns\",\"userId\":\(json(user)),\"payload\":{\"userAccount\":{\"userId\":\(json(user))}}}"
            )
        case .stat(let id, let user, let code, let value, let inc):
            return (
                statTopic,
                "\(user)\t{\"id\":\(json(id)),\"namespace\":\"test-ns\",\"userId\":\(json(user)),\"payload\":{\"statCode\":\(json(code)),\"userId\":\(json(user)),\"latestValue\":\(value),\"inc\":\(inc)}}"
            )
        }
    }

    /// A JSON string literal (quotes, backslashes and control characters escaped).
    static func json(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func produce(_ events: [TestEvent], to broker: DevKafkaProcess) throws {
        let records = events.map(record)
        for topic in [loginTopic, statTopic] {
            try Kcat.produce(records.filter { $0.topic == topic }.map(\.line), topic: topic, bootstrap: broker.bootstrap)
        }
    }

    /// Produces in chunks of 20,000, each once the consumers hold `partitions` partitions and are
    /// less than 10,000 records behind (read at least 1.2 s after the last chunk, so the
    /// once-a-second lag gauge has seen it): the mock cluster keeps only about 5 MB per partition
    /// and drops the oldest records beyond it, so a producer far ahead of its consumers would
    /// lose records before they are read.
    static func producePaced(
        _ events: [TestEvent], to broker: DevKafkaProcess, clients: [OperationsClient], partitions: Int = 16
    ) async throws {
        var start = 0
        while start < events.count {
            let end = min(start + 20_000, events.count)
            let deadline = ContinuousClock.now + .seconds(300)
            while true {
                var lag = 0.0
                var held = 0
                for client in clients {
                    guard let sample = try? await client.metrics() else { continue }
                    lag += sample.sum("kafka_consumer_lag")
                    held += sample.series.filter { $0.name == "kafka_consumer_lag" }.count
                }
                if held >= partitions && lag < 10_000 { break }
                guard ContinuousClock.now < deadline else { throw TestFailure("consumers stayed \(lag) behind") }
                try await Task.sleep(for: .milliseconds(100))
            }
            try produce(Array(events[start..<end]), to: broker)
            start = end
            try await Task.sleep(for: .milliseconds(1_200))
        }
    }

    static func environment(_ broker: DevKafkaProcess, group: String) -> [String: String] {
        [
            "KAFKA_BROKERS": broker.bootstrap, "KAFKA_GROUP_ID": group, "KAFKA_SESSION_TIMEOUT": "6s",
            "BUFFER_FLUSH_INTERVAL": "200ms", "FLUSH_WORKERS": "2",
        ]
    }

    /// Waits until every instance behind `clients` holds at least one partition and together
    /// they hold `partitions`.
    static func waitHeld(_ clients: [OperationsClient], partitions: Int, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        var held: [Int] = []
        while ContinuousClock.now < deadline {
            held = []
            for client in clients {
                let sample = try? await client.metrics()
                held.append(sample?.series.filter { $0.name == "kafka_consumer_lag" }.count ?? 0)
            }
            if held.allSatisfy({ $0 > 0 }) && held.reduce(0, +) == partitions { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("the group never settled: partitions held \(held), expected \(partitions) over all")
    }

    /// Waits until the instances behind `clients` have together received `events` Kafka events.
    static func waitReceived(_ clients: [OperationsClient], events: Int, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        var received = 0.0
        while ContinuousClock.now < deadline {
            received = 0
            for client in clients {
                received += (try? await client.metrics().sum("events_received_total", matching: ["source": "kafka"])) ?? 0
            }
            if received >= Double(events) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("received \(received) of \(events) kafka events within \(timeout)")
    }

    /// Waits until the instances behind `clients` together hold every partition with no lag.
    static func waitDrained(_ clients: [OperationsClient], partitions: Int, timeout: Duration = .seconds(600)) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            var held = 0
            var lag = 0.0
            for client in clients {
                guard let sample = try? await client.metrics() else { continue }
                let series = sample.series.filter { $0.name == "kafka_consumer_lag" }
                held += series.count
                lag += series.reduce(0) { $0 + $1.value }
            }
            last = "\(held) partition gauges, lag \(lag)"
            if held >= partitions && lag == 0 { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw TestFailure("not drained within \(timeout): \(last)")
    }

    static func compare(_ harness: ServiceHarness, _ model: ExpectedState) throws {
        let actual = try harness.tableRows()
        let diff = differences(expected: model.rows, actual: actual)
        #expect(diff.isEmpty, "\(diff.count)+ rows differ:\n\(diff.joined(separator: "\n"))")
        #expect(actual.count == model.rows.count)
    }

    @Test("events produced by kcat over 8 partitions land exactly, row for row", .timeLimit(.minutes(20)))
    func everythingLands() async throws {
        let broker = try DevKafkaProcess(topics: [Self.loginTopic, Self.statTopic], partitions: 8)
        defer { broker.stop() }
        let catalog = TestCatalog()
        let (_, events) = makeWorkload(users: 10_000, count: Self.volume, seed: 20_261_124)
        var model = ExpectedState(catalog: catalog)
        for event in events { model.apply(event) }
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: catalog.json, environment: Self.environment(broker, group: "everything"))
        let started = ContinuousClock.now
        try await Self.producePaced(events, to: broker, clients: [harness.http])
        try await Self.waitDrained([harness.http], partitions: 16)
        print("consumed \(events.count) events in \(ContinuousClock.now - started)")
        #expect(try harness.stop() == 0)
        try Self.compare(harness, model)
        #expect(harness.process.log.contains("unassigned_events=\(model.unassignedEvents)"), "\(harness.process.log.suffix(1_500))")
    }

    @Test(
        "taking over the incumbent's consumer group: partitions start where it committed in Kafka; after a restart the stored positions win",
        .timeLimit(.minutes(5)))
    func takesOverCommittedOffsets() async throws {
        let broker = try DevKafkaProcess(topics: [Self.loginTopic, Self.statTopic], partitions: 4)
        defer { broker.stop() }
        let catalog = TestCatalog()
        let (_, events) = makeWorkload(users: 300, count: 3_000, seed: 20_261_207)
        let incumbents = Array(events[..<1_000])
        let afterSwitch = Array(events[1_000..<2_000])
        let afterRestart = Array(events[2_000...])
        try Self.produce(incumbents, to: broker)
        // The incumbent handler: group "incumbent" read (and applied) everything so far, then
        // stopped, its offsets committed in Kafka.
        let read = try Kcat.consumeCommitting(group: "incumbent", topics: [Self.loginTopic, Self.statTopic], bootstrap: broker.bootstrap)
        #expect(read == incumbents.count)
        try Self.produce(afterSwitch, to: broker)
        var model = ExpectedState(catalog: catalog)
        for event in afterSwitch { model.apply(event) }

        let harness = try ServiceHarness(
            server: .shared, catalogJSON: catalog.json, environment: Self.environment(broker, group: "incumbent"))
        try await Self.waitReceived([harness.http], events: afterSwitch.count)
        try await Self.waitDrained([harness.http], partitions: 8)
        #expect(harness.process.log.contains("kafka partitions without a stored position start where their consumer group committed in Kafka"))
        #expect(try harness.stop() == 0)
        try Self.compare(harness, model)

        // Restarted: PostgreSQL's positions now, not the group's offsets in Kafka (which still
        // point at the switch, and would apply `afterSwitch` again).
        try Self.produce(afterRestart, to: broker)
        for event in afterRestart { model.apply(event) }
        let (process, http) = try harness.startInstance()
        try await Self.waitDrained([http], partitions: 8)
        process.signal(SIGTERM)
        #expect(try process.waitForExit() == 0)
        #expect(!process.log.contains("start where their consumer group committed"))
        try Self.compare(harness, model)
    }

    static let volume = 1_000_000
    /// What fits in the mock cluster's retention when produced before anyone consumes.
    static let upfrontVolume = 120_000

    @Test(
        "killed with SIGKILL three times while consuming and restarted, each time with another FLUSH_WORKERS: no event lost, none applied twice",
        .timeLimit(.minutes(20)))
    func survivesKills() async throws {
        let broker = try DevKafkaProcess(topics: [Self.loginTopic, Self.statTopic], partitions: 8)
        defer { broker.stop() }
        let catalog = TestCatalog()
        let (_, events) = makeWorkload(users: 10_000, count: Self.upfrontVolume, seed: 7_777)
        var model = ExpectedState(catalog: catalog)
        for event in events { model.apply(event) }
        try Self.produce(events, to: broker)

        let harness = try ServiceHarness(
            server: .shared, catalogJSON: catalog.json, environment: Self.environment(broker, group: "killed"))
        var generator = SystemRandomNumberGenerator()
        var current = harness.process
        var http = harness.http
        // Checkpoints are one row per partition and flush worker (migration 007): a restart with
        // another number of workers reads each shard's position from rows of another layout.
        for workers in [3, 1, 4] {
            // A random moment while it consumes and flushes (every 200 ms), then a new instance.
            try await Task.sleep(for: .milliseconds(Int64.random(in: 1_500...5_000, using: &generator)))
            current.signal(SIGKILL)
            _ = try current.waitForExit(timeout: .seconds(30))
            (current, http) = try harness.startInstance(["FLUSH_WORKERS": String(workers)])
        }
        try await Self.waitDrained([http], partitions: 16)
        #expect(current.log.contains("kafka partitions assigned"))
        current.signal(SIGTERM)
        #expect(try current.waitForExit() == 0)
        try Self.compare(harness, model)
    }

    @Test("three instances share the partitions; one stopped with SIGTERM and one killed hand theirs over; the state is exact", .timeLimit(.minutes(20)))
    func threeInstances() async throws {
        let broker = try DevKafkaProcess(topics: [Self.loginTopic, Self.statTopic], partitions: 8)
        defer { broker.stop() }
        let catalog = TestCatalog()
        let (_, events) = makeWorkload(users: 10_000, count: Self.upfrontVolume, seed: 3_333)
        var model = ExpectedState(catalog: catalog)
        for event in events { model.apply(event) }

        let harness = try ServiceHarness(
            server: .shared, catalogJSON: catalog.json, environment: Self.environment(broker, group: "three"))
        let (second, secondHTTP) = try harness.startInstance()
        let (third, thirdHTTP) = try harness.startInstance()
        let everyone = [harness.http, secondHTTP, thirdHTTP]
        // All three in the group: each holds some partitions.
        let deadline = ContinuousClock.now + .seconds(60)
        while ![harness.process, second, third].allSatisfy({ $0.log.contains("kafka partitions assigned") }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        // Each exports the lag of the partitions it holds, and only those: 16 series over the
        // three once the group has settled. (A series of a partition given up used to stay at
        // 0 once scraped, and read as "drained" to a check that counts them.)
        try await Self.waitHeld(everyone, partitions: 16)
        let third1 = events.count / 3
        try await Self.producePaced(Array(events[..<third1]), to: broker, clients: everyone)
        second.signal(SIGTERM)
        #expect(try second.waitForExit() == 0)
        #expect(second.log.contains("kafka partitions revoked after their final flush"))
        try await Self.producePaced(Array(events[third1..<(2 * third1)]), to: broker, clients: [harness.http, thirdHTTP])
        third.signal(SIGKILL)
        _ = try third.waitForExit(timeout: .seconds(30))
        // The survivor holds every partition once the group's session timeout has dropped the
        // killed member (KAFKA_SESSION_TIMEOUT 6 s), not before.
        try await Self.waitHeld([harness.http], partitions: 16)
        try await Self.producePaced(Array(events[(2 * third1)...]), to: broker, clients: [harness.http])
        try await Self.waitDrained([harness.http], partitions: 16)
        #expect(try harness.stop() == 0)
        try Self.compare(harness, model)
    }

    @Test(
        "a malformed record, an oversized user id and a record of an unknown topic are skipped and counted (and copied to the dead-letter topic when there is one); the rest lands",
        .timeLimit(.minutes(5)), arguments: [false, true])
    func badRecordsAreSkipped(deadLetterTopic: Bool) async throws {
        let otherTopic = "test-ns.other.v1.somethingElse"
        let deadLetters = "test-ns.dead-letters"
        let broker = try DevKafkaProcess(
            topics: [Self.loginTopic, Self.statTopic, otherTopic + ":1", deadLetters + ":1"], partitions: 2)
        defer { broker.stop() }
        let catalog = TestCatalog()
        let (_, events) = makeWorkload(users: 50, count: 600, seed: 99)
        var model = ExpectedState(catalog: catalog)
        for event in events { model.apply(event) }
        let long = String(repeating: "u", count: 150)
        var records = events.map(Self.record)
        // In the middle of the stat topic: garbage, and a user id over 100 bytes; then good events.
        records.insert((Self.statTopic, "k1\tthis is not json"), at: 200)
        records.insert(
            (Self.statTopic, "\(long)\t{\"id\":\"x\",\"namespace\":\"test-ns\",\"userId\":\"\(long)\",\"payload\":{\"statCode\":\"stat-1\",\"latestValue\":3,\"inc\":3}}"),
            at: 300)
        for topic in [Self.loginTopic, Self.statTopic] {
            try Kcat.produce(records.filter { $0.topic == topic }.map(\.line), topic: topic, bootstrap: broker.bootstrap)
        }
        try Kcat.produce(["k\t{\"id\":\"y\"}"], topic: otherTopic, bootstrap: broker.bootstrap)

        var environment = Self.environment(broker, group: "bad-records")
        environment["KAFKA_TOPICS"] = [Self.loginTopic, Self.statTopic, otherTopic].joined(separator: ",")
        if deadLetterTopic { environment["KAFKA_DLQ_TOPIC"] = deadLetters }
        let harness = try ServiceHarness(server: .shared, catalogJSON: catalog.json, environment: environment)
        try await Self.waitDrained([harness.http], partitions: 5)
        let sample = try await harness.http.metrics()
        #expect(sample.value("kafka_records_skipped_total", ["reason": "malformed"]) == 1)
        #expect(sample.value("kafka_records_skipped_total", ["reason": "unknown_topic"]) == 1)
        #expect(sample.value("events_rejected_total", ["source": "kafka", "type": "stat", "reason": "invalid_user_id"]) == 1)
        #expect(sample.sum("events_processed_total", matching: ["source": "kafka"]) == Double(events.count))
        #expect(try harness.stop() == 0)
        try Self.compare(harness, model)
        let log = harness.process.log
        #expect(log.contains("kafka record skipped (first of its kind; the rest are counted)"), "\(log.suffix(2_000))")

        // The dead-letter topic holds the three, as they were, with why and where from.
        let letters = try Kcat.consume(topic: deadLetters, bootstrap: broker.bootstrap)
        guard deadLetterTopic else {
            #expect(letters.isEmpty)
            #expect(sample.value("kafka_dead_letters_total", ["outcome": "sent"]) == nil)
            return
        }
        #expect(sample.value("kafka_dead_letters_total", ["outcome": "sent"]) == 3)
        #expect(sample.value("kafka_dead_letters_total", ["outcome": "failed"]) == 0)
        #expect(letters.count == 3, "\(letters)")
        let malformed = letters.first { $0.hasPrefix("k1\tthis is not json\t") }
        #expect(malformed?.contains("dead-letter-reason=malformed") == true, "\(letters)")
        #expect(malformed?.contains("source-topic=\(Self.statTopic)") == true, "\(letters)")
        let oversized = letters.first { $0.hasPrefix("\(long)\t{\"id\":\"x\"") }
        #expect(oversized?.contains("dead-letter-reason=invalid user_id") == true, "\(letters)")
        let unknown = letters.first { $0.hasPrefix("k\t{\"id\":\"y\"}\t") }
        #expect(unknown?.contains("dead-letter-reason=unknown_topic") == true, "\(letters)")
        #expect(unknown?.contains("source-topic=\(otherTopic),source-partition=0,source-offset=0") == true, "\(letters)")
    }

    @Test("a bad record too large for the dead-letter topic is refused, logged with where it came from and counted; its partition goes on", .timeLimit(.minutes(5)))
    func deadLetterRefused() async throws {
        let deadLetters = "test-ns.dead-letters"
        let broker = try DevKafkaProcess(topics: [Self.loginTopic, Self.statTopic, deadLetters + ":1"], partitions: 2)
        defer { broker.stop() }
        let catalog = TestCatalog()
        let (_, events) = makeWorkload(users: 30, count: 300, seed: 4_242)
        var model = ExpectedState(catalog: catalog)
        for event in events { model.apply(event) }
        // 1.5 MB of garbage: the source topic takes it, the dead-letter producer (1 MB records) cannot.
        let huge = "k1\t" + String(repeating: "x", count: 1_500_000)
        var lines = events.map(Self.record).filter { $0.topic == Self.statTopic }.map(\.line)
        lines.insert(huge, at: lines.count / 2)
        try Kcat.produce(lines, topic: Self.statTopic, bootstrap: broker.bootstrap, properties: ["message.max.bytes=3000000"])
        try Kcat.produce(
            events.map(Self.record).filter { $0.topic == Self.loginTopic }.map(\.line), topic: Self.loginTopic,
            bootstrap: broker.bootstrap)
        var environment = Self.environment(broker, group: "dlq-refused")
        environment["KAFKA_DLQ_TOPIC"] = deadLetters
        let harness = try ServiceHarness(server: .shared, catalogJSON: catalog.json, environment: environment)

        try await Self.waitCommitted(harness, records: events.count + 1, group: "dlq-refused")
        let sample = try await harness.http.metrics()
        #expect(sample.value("kafka_records_skipped_total", ["reason": "malformed"]) == 1)
        #expect(sample.value("kafka_dead_letters_total", ["outcome": "sent"]) == 0)
        #expect(sample.value("kafka_dead_letters_total", ["outcome": "failed"]) == 1)
        #expect(try harness.stop() == 0)
        try Self.compare(harness, model)
        let log = harness.process.log
        #expect(log.contains("dead letter could not be queued"), "\(log.suffix(2_000))")
        #expect(log.contains("MSG_SIZE_TOO_LARGE"), "\(log.suffix(2_000))")
        #expect(log.contains("source=\(Self.statTopic)["), "the refusal names where the record can still be read:\n\(log.suffix(2_000))")
        #expect(try Kcat.consume(topic: deadLetters, bootstrap: broker.bootstrap).isEmpty)
    }

    @Test("GDPR deletions on KAFKA_GDPR_TOPIC: the user's rows deleted, checkpointed with them; a deletion without a user is skipped and logged", .timeLimit(.minutes(5)))
    func gdprDeletions() async throws {
        let gdprTopic = "test-ns.iam.account.v1.gdprRequestDataDeletionResponse"
        let broker = try DevKafkaProcess(topics: [Self.loginTopic, Self.statTopic, gdprTopic + ":2"], partitions: 2)
        defer { broker.stop() }
        let catalog = TestCatalog()
        let (users, events) = makeWorkload(users: 20, count: 200, seed: 6_006)
        var model = ExpectedState(catalog: catalog)
        for event in events { model.apply(event) }
        try Self.produce(events, to: broker)
        var environment = Self.environment(broker, group: "gdpr")
        environment["KAFKA_GDPR_TOPIC"] = gdprTopic
        let harness = try ServiceHarness(server: .shared, catalogJSON: catalog.json, environment: environment)
        try await Self.waitCommitted(harness, records: events.count, group: "gdpr")
        try Self.compare(harness, model)

        let gone = users.first { user in model.rows.keys.contains { $0.hasPrefix("\(user)|") } }!
        let deletion = "\(gone)\t{\"id\":\"gdpr-1\",\"namespace\":\"test-ns\",\"payload\":{\"deletionGDPR\":{\"userId\":\(Self.json(gone)),\"namespace\":\"test-ns\"}}}"
        let nobody = "x\t{\"id\":\"gdpr-2\",\"namespace\":\"test-ns\",\"payload\":{\"deletionGDPR\":{}}}"
        try Kcat.produce([deletion, nobody], topic: gdprTopic, bootstrap: broker.bootstrap)
        try await Self.waitCommitted(harness, records: events.count + 2, group: "gdpr")
        model.rows = model.rows.filter { !$0.key.hasPrefix("\(gone)|") }
        try Self.compare(harness, model)
        let sample = try await harness.http.metrics()
        #expect(sample.value("gdpr_deletions_total") == 1)
        #expect(harness.process.log.contains("kafka GDPR deletion refused as bad input"), "\(harness.process.log.suffix(2_000))")
        #expect(harness.process.log.contains("audit: GDPR deletion committed"))
        #expect(try harness.stop() == 0)
    }

    @Test("SIGTERM while the database is away for longer than the session: the member stays in the group until its final flush lands, then hands over; exact", .timeLimit(.minutes(5)))
    func drainOutlastsTheSession() async throws {
        let server = try PostgresServer()
        defer { server.shutdown() }
        let broker = try DevKafkaProcess(topics: [Self.loginTopic, Self.statTopic], partitions: 2)
        defer { broker.stop() }
        let catalog = TestCatalog()
        let (_, events) = makeWorkload(users: 60, count: 600, seed: 6_006)
        var model = ExpectedState(catalog: catalog)
        for event in events { model.apply(event) }
        var environment = Self.environment(broker, group: "slow-drain")
        environment["SHUTDOWN_TIMEOUT"] = "90s"
        let harness = try ServiceHarness(server: server, catalogJSON: catalog.json, environment: environment)
        let (other, otherHTTP) = try harness.startInstance()
        defer { other.terminate() }
        // The group settled: both members hold partitions (no assignment left to come while the
        // database is away).
        try await Self.waitHeld([harness.http, otherHTTP], partitions: 4)
        try Self.produce(Array(events[..<300]), to: broker)
        try await Self.waitDrained([harness.http, otherHTTP], partitions: 4)
        try await Self.waitCommitted(harness, records: 300, group: "slow-drain")

        // The rest is read by both and cannot be written; then the first is asked to stop.
        try server.stop()
        try Self.produce(Array(events[300...]), to: broker)
        // Read by both (counted as received: the once-a-second lag gauge could still show the
        // lag of before the produce), none of it writable.
        try await Self.waitReceived([harness.http, otherHTTP], events: events.count)
        #expect(try await harness.http.metrics().value("event_buffer_size")! > 0, "the stopping member holds unwritten entries")
        harness.process.signal(SIGTERM)
        // Twice the session timeout (6 s) passes: it is still draining, still in the group.
        try await Task.sleep(for: .seconds(12))
        #expect(harness.process.isRunning)
        // (An assignment would show: the other member would be retrying its claim on the database.)
        #expect(
            !other.log.contains("cannot read kafka checkpoints"),
            "handed over before its final flush:\n\(other.log.suffix(2_000))\n--- the stopping member ---\n\(harness.process.log.suffix(3_000))")

        try server.start()
        #expect(try harness.process.waitForExit(timeout: .seconds(90)) == 0, "\(harness.process.log.suffix(3_000))")
        #expect(harness.process.log.contains("kafka partitions revoked after their final flush"))
        #expect(!harness.process.log.contains("fenced"))
        try await Self.waitDrained([otherHTTP], partitions: 4)
        try await Self.waitCommitted(harness, records: events.count, group: "slow-drain")
        other.signal(SIGTERM)
        #expect(try other.waitForExit() == 0)
        try Self.compare(harness, model)
    }

    @Test("a member whose partition was claimed by another exits without committing; the next owner lands everything once", .timeLimit(.minutes(5)))
    func fencedMemberExits() async throws {
        let broker = try DevKafkaProcess(topics: [Self.loginTopic, Self.statTopic], partitions: 2)
        defer { broker.stop() }
        let catalog = TestCatalog()
        let (_, events) = makeWorkload(users: 40, count: 400, seed: 7_575)
        let (first, second) = (Array(events[..<200]), Array(events[200...]))
        var model = ExpectedState(catalog: catalog)
        for event in first { model.apply(event) }

        let harness = try ServiceHarness(
            server: .shared, catalogJSON: catalog.json, environment: Self.environment(broker, group: "fence"))
        try Self.produce(first, to: broker)
        try await Self.waitDrained([harness.http], partitions: 4)
        try await Self.waitCommitted(harness, records: first.count, group: "fence")
        try Self.compare(harness, model)

        // Another member claims a partition (as a new owner does at assignment) while this one
        // still thinks it holds it: its next checkpoint must be refused, and nothing committed.
        let connection = try PostgresConnection(settings: harness.server.settings(database: harness.database))
        defer { connection.close() }
        let claimed = try connection.execute(
            """
            UPDATE kafka_partition_owners SET epoch = epoch + 1, owner = 'intruder'
            WHERE consumer_group = 'fence' AND topic = $1 AND kafka_partition = 0
            """, [.text(Self.statTopic)])
        #expect(claimed.affectedRows == 1)
        try Self.produce(second, to: broker)
        #expect(try harness.process.waitForExit(timeout: .seconds(60)) == 75)
        #expect(harness.process.log.contains("fenced by another consumer-group member"), "\(harness.process.log.suffix(2_000))")
        try Self.compare(harness, model)

        // The next owner starts from the stored positions: everything lands, once.
        for event in second { model.apply(event) }
        let (next, nextHTTP) = try harness.startInstance()
        try await Self.waitDrained([nextHTTP], partitions: 4)
        try await Self.waitCommitted(harness, records: events.count, group: "fence")
        next.signal(SIGTERM)
        #expect(try next.waitForExit() == 0)
        try Self.compare(harness, model)
    }

    /// Waits until the group's checkpoints account for `records` records in every shard (the
    /// sum over partitions of each shard's position).
    static func waitCommitted(_ harness: ServiceHarness, records: Int, group: String) async throws {
        let connection = try PostgresConnection(settings: harness.server.settings(database: harness.database))
        defer { connection.close() }
        let deadline = ContinuousClock.now + .seconds(60)
        var last = ""
        while ContinuousClock.now < deadline {
            let result = try connection.execute(
                """
                SELECT coalesce(min(total), 0), count(*) FROM (
                    SELECT shard, sum(next_offset) AS total FROM kafka_shard_positions WHERE consumer_group = $1 GROUP BY shard) AS s
                """, [.text(group)])
            last = "\(result[0, 0] ?? "?") in \(result[0, 1] ?? "?") shards"
            if result[0, 0] == String(records) && result[0, 1] == "256" { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("checkpoints never reached \(records) records: \(last)")
    }
}
