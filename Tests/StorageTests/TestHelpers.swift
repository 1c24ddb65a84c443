import Foundation
import Logging
import Storage
import Synchronization
import TestSupport

/// A thread started now, joined with `join()` (which rethrows what the body threw).
final class TestThread<T: Sendable>: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let result = LockedValue<Result<T, any Error>?>(nil)

    init(_ name: String, _ body: @escaping @Sendable () throws -> T) {
        let thread = Thread { [result, done] in
            result.set(Result { try body() })
            done.signal()
        }
        thread.name = name
        thread.start()
    }

    func join(timeout: Duration = .seconds(30)) throws -> T {
        guard done.wait(timeout: .now() + .milliseconds(Int(timeout.components.seconds * 1_000))) == .success else {
            throw TestFailure("thread did not finish within \(timeout)")
        }
        return try result.get()!.get()
    }
}

/// A value shared between test threads.
final class LockedValue<Value: Sendable>: Sendable {
    private let value: Mutex<Value>

    init(_ value: Value) { self.value = Mutex(value) }

    func get() -> Value { value.withLock { $0 } }

    func set(_ newValue: Value) { value.withLock { $0 = newValue } }

    func update(_ body: (inout Value) -> Void) { value.withLock { body(&$0) } }
}

/// Blocks until `instant` (for conditions that are the passing of time: lifetimes, idle times).
func sleep(until instant: ContinuousClock.Instant) {
    while ContinuousClock.now < instant {
        let left = instant - ContinuousClock.now
        Thread.sleep(forTimeInterval: Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18)
    }
}

/// The backends connected with `applicationName`, counted from another session.
func backendCount(_ server: PostgresServer, applicationName: String) throws -> Int {
    Int(try server.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = '\(applicationName)'")) ?? -1
}

/// Terminates backend `pid` from another session and waits until it has exited.
func terminateBackend(_ server: PostgresServer, pid: Int32) throws {
    guard try server.psql("SELECT pg_terminate_backend(\(pid))") == "t" else {
        throw TestFailure("backend \(pid) was not there to terminate")
    }
    try waitUntil("backend \(pid) to exit") {
        try server.psql("SELECT count(*) FROM pg_stat_activity WHERE pid = \(pid)") == "0"
    }
}

/// A unique application name, so a test counts only its own connections.
func uniqueApplicationName(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}

let testLogger = Logger(label: "storage-tests")
