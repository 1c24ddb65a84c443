import Dispatch
import Foundation

/// The deduplicator's background work: its maintenance thread (lease renewal, ids Redis missed,
/// expiry of what memory keeps) and the shutdown that records what is left.
extension EventDeduplicator {
    /// Renews the leases of claims held here, records committed ids Redis missed while it was
    /// down, and expires what memory keeps, every third of the lease (at most every 5 s).
    func maintain() {
        let period = min(configuration.lease / 3, .seconds(5))
        while !stopping.load(ordering: .acquiring) {
            Thread.sleep(forTimeInterval: min(period.seconds, 0.5))
            let now = MonotonicTime.now
            if let store, store.client.isUp {
                renewLeases(now: now, period: period)
                // Back after an outage, or leftovers from a failed record: record them now.
                if unrecordedLeft.exchange(false, ordering: .relaxed), held.committed > 0 {
                    let unrecorded = held.committedIDs(limit: 10_000)
                    if unrecorded.count == 10_000 { unrecordedLeft.store(true, ordering: .relaxed) }
                    if !unrecorded.isEmpty { record(unrecorded) }
                }
            }
            // Expiry takes the oldest commits from the front of a queue: its cost is what expires.
            if held.committed + held.recorded > 0 {
                let ttl = UInt64(configuration.ttl.nanoseconds)
                held.expire(committedBefore: now > ttl ? now - ttl : 0)
            }
        }
    }

    /// Renews this process's live key and the leases of the claims it has held for a period
    /// (re-creating one that expired while Redis was away), at most once per period.
    private func renewLeases(now: UInt64, period: Duration) {
        let periodNanos = UInt64(period.nanoseconds)
        let due = lastRenewal.withLock { last -> Bool in
            guard now - last >= periodNanos else { return false }
            last = now
            return true
        }
        guard due, let store else { return }
        let ids = held.claimedIDs(since: now > periodNanos ? now - periodNanos : 0)
        store.client.submit(store.renew(ids)) { _ in }
    }

    /// At shutdown, after the last flush: records the committed ids Redis has not got yet
    /// (bounded by `timeout`), stops the maintenance thread and closes Redis. Blocking.
    func stop(timeout: Duration) {
        stopping.store(true, ordering: .releasing)
        _ = maintenanceDone.wait(timeout: .now() + 2)
        guard let store else { return }
        let deadline = ContinuousClock.now + timeout
        while store.client.isUp, ContinuousClock.now < deadline {
            let left = held.committedIDs(limit: 10_000)
            if left.isEmpty { break }
            let done = DispatchSemaphore(value: 0)
            record(left) { done.signal() }
            _ = done.wait(timeout: .now() + max(0, (deadline - ContinuousClock.now).seconds))
        }
        _ = store.client.execute([store.gone()])
        if held.committed > 0 {
            logger.warning(
                "stopping with committed event ids not recorded in Redis: a repeat of one reaching another replica may be applied again",
                metadata: ["ids": "\(held.committed)"])
        }
        store.client.close()
    }
}
