import Synchronization

/// A counter many threads add to without a lock (relaxed atomic adds: a total read at scrape
/// time needs no ordering with anything else).
public final class AtomicCounter: Sendable {
    private let value = Atomic<Int>(0)

    public init() {}

    public func add(_ amount: Int) {
        value.add(amount, ordering: .relaxed)
    }

    public var total: Int { value.load(ordering: .relaxed) }
}

/// A Prometheus histogram kept in atomics: one counter per bucket (not cumulative; summed at
/// exposition), the sum in nanoseconds and the count. Recording is a short scan of the bounds
/// and two relaxed adds, with no lock shared between calls.
final class AtomicHistogram: Sendable {
    /// Upper bounds in nanoseconds, ascending.
    let bounds: [UInt64]
    private let buckets: [AtomicCounter]
    private let sumNanoseconds = AtomicCounter()

    init(boundsInSeconds: [Double]) {
        bounds = boundsInSeconds.map { UInt64(($0 * 1e9).rounded()) }
        buckets = (0...boundsInSeconds.count).map { _ in AtomicCounter() }
    }

    func record(nanoseconds: UInt64) {
        var index = 0
        while index < bounds.count && nanoseconds > bounds[index] { index += 1 }
        buckets[index].add(1)
        sumNanoseconds.add(Int(truncatingIfNeeded: nanoseconds))
    }

    /// Appends the `_bucket`, `_sum` and `_count` lines under `name` with `labels`
    /// (`key="value"` pairs already joined, without braces).
    func write(name: String, labels: String, into text: inout String) {
        let separator = labels.isEmpty ? "" : ","
        var cumulative = 0
        for (index, bound) in bounds.enumerated() {
            cumulative += buckets[index].total
            text += "\(name)_bucket{\(labels)\(separator)le=\"\(Self.format(Double(bound) / 1e9))\"} \(cumulative)\n"
        }
        cumulative += buckets[bounds.count].total
        text += "\(name)_bucket{\(labels)\(separator)le=\"+Inf\"} \(cumulative)\n"
        text += "\(name)_sum{\(labels)} \(Self.format(Double(sumNanoseconds.total) / 1e9))\n"
        text += "\(name)_count{\(labels)} \(cumulative)\n"
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
    }
}
