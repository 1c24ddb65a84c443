import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GameEvents
import GameEventsGRPC
import ServiceTestSupport
import Synchronization
import TestSupport
import Testing

/// 12,000 malformed or hostile payloads, over gRPC (raw bytes straight into the methods, and
/// well-formed messages with bad fields) and over Kafka, mixed with good events, some of them at
/// the edges of what is valid: every good event lands exactly, every bad one is answered or
/// skipped with a reason, and the process is still there at the end.
@Suite("Hostile payloads", .serialized)
struct HostilePayloadTests {
    static let tenKB = String(repeating: "x", count: 10_240)

    /// Good events at the edges of what is valid: ids with quotes, backslashes, emoji, a
    /// no-break space (U+00A0, whose UTF-8 starts like a C1 control) and SQL, negative and 2^40
    /// values (clamped to the column's range).
    static func edgyEvents(count: Int, seed: UInt64) -> [TestEvent] {
        var random = SeededGenerator(seed: seed)
        let ids = ["q\"uote", "nbsp\u{A0}id", "back\\slash", "emoji-🎮", "pct%0Aid", "<script>", "'; DROP TABLE x; --"]
        // Ascending over the run, so each (user, stat) only grows, as stats do: a value that
        // falls back within one flush window would merge away a completion the model keeps.
        let values: [Double] = [-1e300, -5, 0, 7.9, 2_147_483_648, 1_099_511_627_776, 1e18]
        return (0..<count).map { n in
            let id = "\(ids[n % ids.count])-\(n)"
            let user = "edge-user-\(Int.random(in: 0..<40, using: &random))"
            if n % 5 == 0 { return .login(id: id, user: user) }
            return .stat(id: id, user: user, code: "stat-\(n % 5)", value: values[n * values.count / count], inc: 1)
        }
    }

    // MARK: - gRPC

    /// Bytes as they are: the request goes out exactly as generated, valid protobuf or not.
    struct RawBytes: MessageSerializer, MessageDeserializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
        func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
            bytes.withUnsafeBytes { Array($0) }
        }
    }

    /// A hostile gRPC call and what must come back.
    enum HostileCall: Sendable {
        /// Bytes into a method: any answer but a hang or a dropped connection.
        case raw(login: Bool, bytes: [UInt8])
        /// A well-formed message with a bad field: INVALID_ARGUMENT naming it.
        case login(GameEventsLogin, field: String)
        case stat(GameEventsStat, field: String)
    }

    static func hostileCalls(count: Int, seed: UInt64) throws -> [HostileCall] {
        var random = SeededGenerator(seed: seed)
        var calls: [HostileCall] = []
        let goodStat = try TestEvent.stat(id: "t", user: "hostile-truncated", code: "stat-1", value: 4, inc: 1).statMessage!
            .serializedBytes() as [UInt8]
        for n in 0..<count {
            let id = "hostile-\(n)"
            var login = TestEvent.login(id: id, user: "hostile-user").loginMessage!
            var stat = TestEvent.stat(id: id, user: "hostile-user", code: "stat-0", value: 5, inc: 1).statMessage!
            switch n % 12 {
            case 0:
                let bytes = (0..<Int.random(in: 1...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                calls.append(.raw(login: n % 24 == 0, bytes: bytes))
            case 1:
                calls.append(.raw(login: false, bytes: Array(goodStat.prefix(Int.random(in: 1..<goodStat.count, using: &random)))))
            case 2:
                // A length prefix far past the end of the message.
                calls.append(.raw(login: true, bytes: [0x0A, 0xFF, 0xFF, 0xFF, 0x0F, 0x41]))
            case 3:
                login.userID = tenKB
                calls.append(.login(login, field: "user_id"))
            case 4:
                stat.id = tenKB
                calls.append(.stat(stat, field: "id"))
            case 5:
                stat.payload.statCode = tenKB
                calls.append(.stat(stat, field: "payload.stat_code"))
            case 6:
                stat.payload.latestValue = .nan
                calls.append(.stat(stat, field: "payload.latest_value"))
            case 7:
                stat.payload.inc = n % 2 == 0 ? .infinity : -.infinity
                calls.append(.stat(stat, field: "payload.inc"))
            case 8:
                // Control characters: a NUL (the table cannot store it), a newline (a forged log
                // line), an escape sequence, a C1 control; in the user id or the event id.
                let control = ["nul\u{0}inside", "new\nline", "esc\u{1B}[31m", "c1\u{85}nel"][(n / 12) % 4]
                if (n / 48) % 2 == 0 {
                    login.userID = control
                    calls.append(.login(login, field: "user_id"))
                } else {
                    login.id = control
                    calls.append(.login(login, field: "id"))
                }
            case 9:
                stat.userID = ""
                calls.append(.stat(stat, field: "user_id"))
            case 10:
                stat.clearPayload()
                calls.append(.stat(stat, field: "payload"))
            default:
                stat.payload.latestValue = -.infinity
                stat.payload.statCode = ""
                calls.append(.stat(stat, field: "payload.stat_code"))
            }
        }
        return calls
    }

    @Test("gRPC: 7,000 hostile calls (raw bytes, truncated protobuf, 10 KB strings, NaN, control characters) among 3,000 good ones: each answered, the good land exactly", .timeLimit(.minutes(5)))
    func grpcHostile() async throws {
        let catalog = TestCatalog()
        let (_, plain) = makeWorkload(users: 200, count: 2_000, seed: 101)
        let good = plain + Self.edgyEvents(count: 1_000, seed: 102)
        let hostile = try Self.hostileCalls(count: 7_000, seed: 103)
        var model = ExpectedState(catalog: catalog)
        for event in good { model.apply(event) }
        let harness = try ServiceHarness(server: .shared, catalogJSON: catalog.json)
        let answers = Answers()
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: harness.grpcPort), transportSecurity: .plaintext)
        ) { client in
            let login = LoginClient(wrapping: client)
            let stat = StatClient(wrapping: client)
            var options = CallOptions.defaults
            options.timeout = .seconds(10)
            let callOptions = options
            try await withThrowingTaskGroup(of: Void.self) { group in
                // 8 lanes: good events by user (their order kept), hostile ones spread among them.
                for lane in 0..<8 {
                    let goodHere = good.filter { BridgeLoad.lane(of: $0.user, lanes: 8) == lane }
                    let hostileHere = hostile.enumerated().filter { $0.offset % 8 == lane }.map(\.element)
                    group.addTask {
                        var g = 0
                        var h = 0
                        while g < goodHere.count || h < hostileHere.count {
                            if h < hostileHere.count && (g >= goodHere.count || h * goodHere.count <= g * hostileHere.count) {
                                let outcome = await Self.send(hostileHere[h], client: client, login: login, stat: stat, options: callOptions)
                                answers.codes.withLock { $0[outcome.code, default: 0] += 1 }
                                if let problem = outcome.problem { answers.problems.withLock { $0.append(problem) } }
                                h += 1
                            } else {
                                try await goodHere[g].send(login: login, stat: stat)
                                g += 1
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let problems = answers.problems.withLock { $0 }
        #expect(problems.isEmpty, "\(problems.count) answered wrongly, e.g. \(problems.prefix(5))")
        let seen = answers.codes.withLock { $0 }
        print("hostile gRPC answers by code: \(seen.sorted { $0.key < $1.key })")
        #expect(seen.values.reduce(0, +) == hostile.count)
        #expect(seen["deadlineExceeded"] == nil && seen["unavailable"] == nil)
        let sample = try await harness.http.metrics()
        #expect(sample.value("service_ready") == 1, "still serving")
        #expect(try harness.stop() == 0)
        let actual = try harness.tableRows().filter { !$0.key.hasPrefix("hostile-") }
        let diff = differences(expected: model.rows, actual: actual)
        #expect(diff.isEmpty, "\(diff.joined(separator: "\n"))")
    }

    static func send(
        _ call: HostileCall, client: GRPCClient<HTTP2ClientTransport.Posix>, login: LoginClient, stat: StatClient, options: CallOptions
    ) async -> (code: String, problem: String?) {
        do {
            switch call {
            case .raw(let isLogin, let bytes):
                let descriptor =
                    isLogin
                    ? Accelbyte_Iam_Account_V1_UserAuthenticationUserLoggedInService.Method.OnMessage.descriptor
                    : Accelbyte_Social_Statistic_V1_StatisticStatItemUpdatedService.Method.OnMessage.descriptor
                _ = try await client.unary(
                    request: ClientRequest(message: bytes), descriptor: descriptor, serializer: RawBytes(),
                    deserializer: RawBytes(), options: options
                ) { try $0.message }
                return ("ok", nil)
            case .login(let message, let field):
                _ = try await login.onMessage(message, options: options)
                return ("ok", "login with bad \(field) was accepted")
            case .stat(let message, let field):
                _ = try await stat.onMessage(message, options: options)
                return ("ok", "stat with bad \(field) was accepted")
            }
        } catch let error as RPCError {
            switch call {
            case .raw:
                return ("\(error.code)", nil)
            case .login(_, let field), .stat(_, let field):
                let right = error.code == .invalidArgument && error.message.hasPrefix("\(field):")
                return ("\(error.code)", right ? nil : "bad \(field): \(error.code) \(error.message.prefix(120))")
            }
        } catch {
            return ("other", "\(error)")
        }
    }

    // MARK: - Kafka

    /// Hostile Kafka records (kcat lines: no newline in a value).
    static func hostileRecords(count: Int, seed: UInt64) -> [(topic: String, line: String)] {
        var random = SeededGenerator(seed: seed)
        let printable = Array("abcdefghijklmnopqrstuvwxyz{}[]\":,0123456789 é✓-_.\\")
        let good = KafkaIngestionTests.record(.stat(id: "truncated", user: "hostile-k", code: "stat-2", value: 9, inc: 1)).line
        let deep = String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)
        return (0..<count).map { n in
            let topic = n % 2 == 0 ? KafkaIngestionTests.statTopic : KafkaIngestionTests.loginTopic
            let value: String
            switch n % 10 {
            case 0: value = String((0..<Int.random(in: 1...300, using: &random)).map { _ in printable.randomElement(using: &random)! })
            case 1:
                let body = good.split(separator: "\t", maxSplits: 1)[1]
                value = String(body.prefix(Int.random(in: 1..<body.count, using: &random)))
            case 2: value = "{\"id\":\"k\(n)\",\"namespace\":\"test-ns\",\"userId\":\"\(tenKB)\",\"payload\":{\"statCode\":\"stat-1\",\"userId\":\"u\",\"latestValue\":1}}"
            case 3: value = "{\"id\":\"k\(n)\",\"namespace\":\"test-ns\",\"userId\":\"hostile-k\",\"payload\":{\"statCode\":\"stat-1\",\"userId\":\"hostile-k\",\"latestValue\":\"NaN\"}}"
            case 4: value = "{\"id\":5,\"userId\":true,\"payload\":\"nope\"}"
            case 5: value = "{\"id\":\"k\(n)\",\"payload\":\(deep)}"
            case 6: value = "{\"id\":\"\(tenKB)\",\"namespace\":\"test-ns\",\"userId\":\"hostile-k\",\"payload\":{\"statCode\":\"stat-1\",\"userId\":\"hostile-k\",\"latestValue\":1}}"
            case 7: value = "{\"id\":\"k\(n)\",\"namespace\":\"test-ns\",\"userId\":\"hostile-k\",\"payload\":{\"statCode\":\"stat-1\",\"userId\":\"hostile-k\",\"latestValue\":1,\"inc\":\"-Infinity\"}}"
            case 8: value = n % 20 == 8 ? "" : "null"
            default: value = "{\"id\":\"k\(n)\",\"unknownField\":{\"a\":\(deep)},\"userId\":\"hostile-k\"}"
            }
            // Keys spread the records over the partitions (the mock cluster keeps about 5 MB
            // of each, and 10 KB records add up).
            return (topic, "hostile-k\(n % 64)\t\(value)")
        }
    }

    @Test("Kafka: 5,000 hostile records (garbage, truncated JSON, 10 KB strings, NaN, 5,000-deep nesting, also in an ignored field) among 3,000 good ones: each skipped with a reason, the good land exactly", .timeLimit(.minutes(5)))
    func kafkaHostile() async throws {
        let broker = try DevKafkaProcess(topics: [KafkaIngestionTests.loginTopic, KafkaIngestionTests.statTopic], partitions: 8)
        defer { broker.stop() }
        let catalog = TestCatalog()
        let (_, plain) = makeWorkload(users: 200, count: 2_000, seed: 111)
        let good = plain + Self.edgyEvents(count: 1_000, seed: 112)
        var model = ExpectedState(catalog: catalog)
        for event in good { model.apply(event) }
        let hostile = Self.hostileRecords(count: 5_000, seed: 113)
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: catalog.json, environment: KafkaIngestionTests.environment(broker, group: "hostile"))
        // Interleaved: a hostile record after every good one, then the rest.
        var lines = good.map(KafkaIngestionTests.record)
        for (n, record) in hostile.enumerated() { lines.insert(record, at: min(lines.count, n * 2 + 1)) }
        for topic in [KafkaIngestionTests.loginTopic, KafkaIngestionTests.statTopic] {
            try Kcat.produce(
                lines.filter { $0.topic == topic }.map(\.line), topic: topic, bootstrap: broker.bootstrap,
                properties: ["message.max.bytes=2000000"])
        }
        let total = Double(lines.count)
        try await KafkaIngestionTests.waitReceived([harness.http], events: good.count, timeout: .seconds(120))
        try await KafkaIngestionTests.waitDrained([harness.http], partitions: 16, timeout: .seconds(60))
        let sample = try await harness.http.metrics()
        let skipped = sample.value("kafka_records_skipped_total", ["reason": "malformed"]) ?? 0
        let rejected = sample.sum("events_rejected_total", matching: ["source": "kafka"])
        print(
            "hostile Kafka records: \(Int(skipped)) malformed, \(Int(rejected)) rejected with a field; received \(sample.sum("events_received_total", matching: ["source": "kafka"])) of \(Int(total)) records")
        let received = sample.sum("events_received_total", matching: ["source": "kafka"])
        let ignored = sample.sum("events_ignored_total", matching: ["source": "kafka"])
        let processed = sample.sum("events_processed_total", matching: ["source": "kafka"])
        // Every record is decoded or skipped as malformed, and every decoded event has an outcome.
        #expect(skipped + received == total)
        #expect(processed + ignored + rejected == received)
        // Garbage, truncated JSON, 10 KB user ids and 10 KB ids (4 of every 10) never get in.
        #expect(skipped + rejected >= Double(hostile.count * 4 / 10))
        #expect(processed >= Double(good.count))
        #expect(sample.value("service_ready") == 1)
        let deadline = ContinuousClock.now + .seconds(30)
        while try !differences(expected: model.rows, actual: harness.tableRows().filter { !$0.key.hasPrefix("hostile-") }).isEmpty
            && ContinuousClock.now < deadline
        {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(try harness.stop() == 0)
        let actual = try harness.tableRows().filter { !$0.key.hasPrefix("hostile-") }
        let diff = differences(expected: model.rows, actual: actual)
        #expect(diff.isEmpty, "\(diff.joined(separator: "\n"))\n--- log ---\n\(harness.process.log.suffix(2_000))")
    }
}

/// What the hostile gRPC calls got back, gathered from the sending tasks.
private final class Answers: Sendable {
    let codes = Mutex<[String: Int]>([:])
    let problems = Mutex<[String]>([])
}
