/// One event the generator is about to send: who, what, and its place in the run.
public struct PlannedEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case login
        /// A statistic update on `stat-<code>` carrying `latest_value` = `value`.
        case stat(code: Int, value: Int)
    }

    /// The event's number in the run (its id is `<runID>-<sequence>`).
    public var sequence: Int
    /// The user's index (0..<users).
    public var user: Int
    public var kind: Kind

    public init(sequence: Int, user: Int, kind: Kind) {
        self.sequence = sequence
        self.user = user
        self.kind = kind
    }
}

/// The benchmark event mix (shared with k6, bench/k6/events.js): 20% logins, 80% statistic
/// updates on a code drawn uniformly from `stat-0`...`stat-4`, each for a random user, with
/// `latest_value` = how many stat events were sent so far for that (user, code), this one
/// included.
///
/// Per-user order: the mix also knows which users have a call in flight. A draw that lands on
/// such a user takes the next free one instead, so no user ever has two calls out; the caller
/// reports each answer with `finish(_:)`. With at most 500 calls out among 10,000 users the
/// walk to a free user is short.
///
/// Not thread-safe by itself: the generator keeps it under its lock.
public struct EventMix<Random: RandomNumberGenerator> {
    /// The share of logins among events.
    public static var loginShare: Double { 0.2 }
    /// How many statistic codes the mix spreads its updates over (`stat-0`...).
    public static var statCodes: Int { 5 }

    public let users: Int
    private var random: Random
    private var busy: [Bool]
    /// Stat events sent per (user, code), at `user * statCodes + code`.
    private var sentPerCode: [Int32]
    public private(set) var inFlight = 0
    private var nextSequence = 0

    public init(users: Int, random: Random) {
        precondition(users > 0, "the mix needs users")
        self.users = users
        self.random = random
        busy = Array(repeating: false, count: users)
        sentPerCode = Array(repeating: 0, count: users * Self.statCodes)
    }

    /// The next event, its user now marked in flight; nil when every user has a call out.
    public mutating func next() -> PlannedEvent? {
        guard inFlight < users else { return nil }
        var user = Int.random(in: 0..<users, using: &random)
        while busy[user] {
            user += 1
            if user == users { user = 0 }
        }
        busy[user] = true
        inFlight += 1
        let sequence = nextSequence
        nextSequence += 1
        // One draw out of five is a login: 20%.
        let draw = Int.random(in: 0..<(Self.statCodes * 5), using: &random)
        if draw < Self.statCodes {
            return PlannedEvent(sequence: sequence, user: user, kind: .login)
        }
        let code = draw % Self.statCodes
        let slot = user * Self.statCodes + code
        sentPerCode[slot] += 1
        return PlannedEvent(sequence: sequence, user: user, kind: .stat(code: code, value: Int(sentPerCode[slot])))
    }

    /// The event's call was answered (whatever the answer): its user is free again.
    public mutating func finish(_ event: PlannedEvent) {
        precondition(busy[event.user], "user \(event.user) had no call in flight")
        busy[event.user] = false
        inFlight -= 1
    }

    /// Whether `user` has a call in flight.
    public func isInFlight(_ user: Int) -> Bool { busy[user] }

    /// How many stat events were sent so far for (user, code).
    public func statEventsSent(user: Int, code: Int) -> Int { Int(sentPerCode[user * Self.statCodes + code]) }
}
