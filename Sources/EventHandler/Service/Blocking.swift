import Foundation

/// Runs blocking work (libpq, waits on semaphores) on a new thread of our own and awaits it, so
/// the Swift cooperative pool is never blocked. For start-up and shutdown steps, not hot paths.
func onOwnThread<T: Sendable>(
    _ name: String, _ body: @escaping @Sendable () throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
        thread.name = name
        thread.start()
    }
}
