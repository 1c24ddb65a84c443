import Foundation
import GRPCCore
import Logging
import ServiceTestSupport
import Synchronization
import TestSupport
import Testing

@testable import EventHandler

/// The log lines for what the ingest path otherwise only counts (docs/troubleshooting.md):
/// events of another namespace, and a full buffer refusing events. In process, on a clock the
/// test moves: when a line comes, what it says, and that it never comes once per event.
@Suite("Ingest notices: log lines for ignored and refused events")
struct IngestNoticesTests {
    /// The lines a logger wrote, as (message, metadata).
    final class Captured: Sendable {
        private let store = Mutex<[(message: String, metadata: [String: String])]>([])
        let now = Atomic<UInt64>(0)

        var lines: [(message: String, metadata: [String: String])] { store.withLock { $0 } }

        func lines(_ prefix: String) -> [[String: String]] {
            lines.filter { $0.message.hasPrefix(prefix) }.map(\.metadata)
        }

        func notices(limit: Int = 40) -> IngestNotices {
            let logger = Logger(label: "event-handler") { label in
                JSONLogHandler(label: label) { [self] line in
                    let object = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                    let metadata = object["metadata"] as? [String: String] ?? [:]
                    store.withLock { $0.append((object["message"] as! String, metadata)) }
                }
            }
            return IngestNotices(namespace: "test-ns", limits: [.bufferFull: limit, .eventIDLimit: 7, .waitingLimit: 3], logger: logger) { [self] in now.load(ordering: .relaxed) }
        }

        func at(seconds: UInt64) { now.store(seconds * 1_000_000_000, ordering: .relaxed) }
    }

    @Test("another namespace: the first event at once, then at most one line a minute with the count since the last")
    func otherNamespace() {
        let log = Captured()
        let notices = log.notices()
        for _ in 0..<3 { notices.otherNamespace("someone-else") }
        #expect(log.lines("events of another namespace ignored") == [["namespace": "someone-else", "ab_namespace": "test-ns", "ignored": "1"]])
        log.at(seconds: 59)
        for _ in 0..<2 { notices.otherNamespace("someone-else") }
        #expect(log.lines.count == 1)
        log.at(seconds: 60)
        notices.otherNamespace("third")
        #expect(log.lines("events of another namespace ignored").last == ["namespace": "third", "ab_namespace": "test-ns", "ignored": "5"])
        // What the sender wrote is logged safely: printable ASCII, 64 characters at most.
        log.at(seconds: 120)
        notices.otherNamespace("a\nb c" + String(repeating: "x", count: 100))
        #expect(log.lines.last?.metadata["namespace"] == "a?b?c" + String(repeating: "x", count: 59) + "…")
        log.at(seconds: 180)
        notices.otherNamespace("")
        #expect(log.lines.last?.metadata["namespace"] == "(empty)")
        #expect(log.lines.count == 4)
    }

    @Test("a full buffer: a line when back-pressure starts, one when it ends; starts at most once a minute")
    func bufferFull() {
        let log = Captured()
        let counters = IngestCounters(notices: log.notices(limit: 40))
        for _ in 0..<3 { counters.record(.grpc, .login, .overloaded(.bufferFull)) }
        #expect(log.lines("event buffer full") == [["limit": "40", "times_full": "1"]])
        log.at(seconds: 5)
        counters.noteRoom()
        counters.noteRoom()
        #expect(log.lines("event buffer has room again") == [["refused": "3", "duration_ms": "5000"]])
        // Full again within the minute, twice: counted, not logged, and its end neither.
        for second: UInt64 in [10, 20] {
            log.at(seconds: second)
            counters.record(.kafka, .stat, .overloaded(.bufferFull))
            counters.noteRoom()
        }
        #expect(log.lines.count == 2)
        log.at(seconds: 60)
        counters.record(.grpc, .stat, .overloaded(.bufferFull))
        counters.record(.grpc, .stat, .overloaded(.bufferFull))
        #expect(log.lines("event buffer full").last == ["limit": "40", "times_full": "3"])
        log.at(seconds: 61)
        counters.noteRoom()
        #expect(log.lines("event buffer has room again").last == ["refused": "2", "duration_ms": "1000"])
        #expect(log.lines.count == 4)
        #expect(counters.backPressureActivations == 4)
        #expect(counters.total[.rejected(.bufferFull)] == 7)
    }

    @Test("each memory limit has its own episode: merges with ids taken under a full buffer do not end it, and the lines name the setting")
    func limitsApart() {
        let log = Captured()
        let counters = IngestCounters(notices: log.notices(limit: 40))
        counters.record(.grpc, .login, .overloaded(.bufferFull))
        // Under a full buffer, events that only merge are taken, ids and all: the id limit has
        // room, the buffer's episode goes on.
        counters.noteRoom(.eventIDLimit)
        counters.noteRoom(.waitingLimit)
        counters.record(.grpc, .login, .overloaded(.bufferFull))
        #expect(counters.backPressureActivations == 1)
        #expect(log.lines("event buffer has room again").isEmpty)
        counters.noteRoom(.bufferFull)
        #expect(log.lines("event buffer has room again").count == 1)
        // Another limit's line is not held back by the buffer's, a second earlier.
        log.at(seconds: 1)
        counters.record(.grpc, .stat, .overloaded(.eventIDLimit))
        #expect(log.lines("too many accepted events wait for their commit (BUFFER_EVENT_ID_LIMIT)") == [["limit": "7", "times_full": "1"]])
        counters.noteRoom(.bufferFull)
        #expect(log.lines.count == 3, "room in another limit does not end this episode")
        log.at(seconds: 3)
        counters.noteRoom(.eventIDLimit)
        #expect(log.lines("BUFFER_EVENT_ID_LIMIT has room again") == [["refused": "1", "duration_ms": "2000"]])
        log.at(seconds: 4)
        counters.record(.grpc, .login, .overloaded(.waitingLimit))
        #expect(log.lines("too many calls wait for their commit (ACK_WAITING_LIMIT)") == [["limit": "3", "times_full": "1"]])
        #expect(counters.backPressureActivations == 3)
        #expect(counters.total[.rejected(.eventIDLimit)] == 1)
        #expect(counters.total[.rejected(.ackWaitingLimit)] == 1)
        #expect(counters.total[.rejected(.bufferFull)] == 2)
    }
}

extension OperationsTests {
    @Test(
        "the running service logs events of another namespace and a full buffer once, not once per event",
        .timeLimit(.minutes(5)))
    func ignoredAndRefusedEventsAreLogged() async throws {
        let server = try PostgresServer()
        defer { server.shutdown() }
        // A login of a new user creates 20 entries: two fill a buffer of 40.
        let harness = try ServiceHarness(
            server: server, catalogJSON: TestCatalog().json,
            environment: ["BUFFER_SIZE_LIMIT": "40", "DB_CONNECT_TIMEOUT": "1s", "SHUTDOWN_TIMEOUT": "2m"])
        let http = harness.http
        func lines(_ text: String) -> [Substring] { harness.process.log.split(separator: "\n").filter { $0.contains(text) } }

        try await harness.withClients { login, stat in
            for n in 0..<15 {
                _ = try await login.onMessage(Self.login("stranger-\(n)", id: "sl\(n)", namespace: "someone-else"))
                _ = try await stat.onMessage(Self.stat("stranger-\(n)", id: "ss\(n)", namespace: "someone-else"))
            }
        }
        try harness.process.waitForLog("events of another namespace ignored")
        let foreign = lines("events of another namespace ignored")
        #expect(foreign.count == 1, "\(harness.process.log)")
        for part in ["warning", "ab_namespace=test-ns", "namespace=someone-else", "ignored=1"] {
            #expect(foreign.first?.contains(part) == true, "\(part) in \(foreign)")
        }

        // The database goes away: the two logins that fill the buffer stay in it (the flushes
        // fail), and new users' events are refused.
        try server.stop()
        try await harness.withClients { login, _ in
            for u in 0..<2 { _ = try await login.onMessage(Self.login("filler-\(u)", id: "fill\(u)")) }
        }
        try await http.waitForMetrics { ($0.value("flush_failures_total") ?? 0) > 0 && $0.value("event_buffer_size") == 40 }
        var refused = 0
        try await harness.withClients { login, _ in
            for u in 0..<5 {
                do {
                    _ = try await login.onMessage(Self.login("late-\(u)", id: "late\(u)"))
                } catch let error as RPCError where error.code == .resourceExhausted {
                    refused += 1
                }
            }
        }
        #expect(refused >= 1)
        try harness.process.waitForLog("event buffer full")
        let full = lines("event buffer full")
        #expect(full.count == 1, "\(harness.process.log)")
        #expect(full.first?.contains("limit=40") == true && full.first?.contains("RESOURCE_EXHAUSTED") == true, "\(full)")

        // Back: a flush empties the buffer, and the next new entry ends the episode.
        try server.start()
        try await http.waitForMetrics { $0.value("event_buffer_size") == 0 && $0.value("flush_consecutive_failures") == 0 }
        try await harness.withClients { login, _ in _ = try await login.onMessage(Self.login("after", id: "after1")) }
        try harness.process.waitForLog("event buffer has room again")
        #expect(try harness.stop() == 0)

        let room = lines("event buffer has room again")
        #expect(room.count == 1, "\(harness.process.log)")
        // All five refused (a retry's flush, which empties the buffer for an instant, can let one in).
        if refused == 5 { #expect(room.first?.contains("refused=5") == true, "\(room)") }
        #expect(lines("events of another namespace ignored").count == 1)
        #expect(lines("event buffer full").count == 1)
        #expect(!harness.process.log.contains("stranger-") && !harness.process.log.contains("late-"), "an event reached the log")
    }
}
