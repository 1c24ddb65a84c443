import Foundation

/// Polls `condition` until it holds; throws when `timeout` passes first. For conditions that
/// another process or thread makes true (a backend exiting, a reply arriving), not a stand-in for
/// sleeping.
public func waitUntil(
    _ what: String, timeout: Duration = .seconds(15), _ condition: () throws -> Bool
) throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out after \(timeout) waiting for \(what)") }
        Thread.sleep(forTimeInterval: 0.01)
    }
}
