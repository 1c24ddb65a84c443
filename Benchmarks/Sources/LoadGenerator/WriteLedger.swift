/// What the answered-OK events should have written, so a run can prove its writes (the "proof
/// of writes" of bench/k6/events.js): once the service has flushed and every call was answered
/// OK, the login goals' progress sums to 10 × `loginsOK` and the statistic goals' progress to
/// 10 × `statValueSumOK`, the sum over every (user, code) of the last `latest_value` answered OK.
///
/// Calls for one user never overlap (`EventMix`), so the OK answers of a (user, code) come in
/// sending order and each OK value is above the previous one: the sum moves by the difference.
public struct WriteLedger: Sendable {
    public private(set) var loginsOK = 0
    public private(set) var statsOK = 0
    public private(set) var statValueSumOK = 0
    /// The last `latest_value` answered OK per (user, code), at `user * statCodes + code`.
    private var lastOK: [Int32]
    private let statCodes: Int

    public init(users: Int, statCodes: Int = 5) {
        self.statCodes = statCodes
        lastOK = Array(repeating: 0, count: users * statCodes)
    }

    /// `event` was answered OK.
    public mutating func answeredOK(_ event: PlannedEvent) {
        switch event.kind {
        case .login:
            loginsOK += 1
        case .stat(let code, let value):
            statsOK += 1
            let slot = event.user * statCodes + code
            let previous = Int(lastOK[slot])
            // A later value answered OK replaces an earlier one; an older one (impossible while
            // per-user order holds) would not lower what the row already holds.
            if value > previous {
                statValueSumOK += value - previous
                lastOK[slot] = Int32(value)
            }
        }
    }

    /// The last `latest_value` answered OK for (user, code); 0 when none was.
    public func lastValueOK(user: Int, code: Int) -> Int { Int(lastOK[user * statCodes + code]) }
}
