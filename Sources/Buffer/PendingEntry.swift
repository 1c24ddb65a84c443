/// The key of a pending entry: one per (user, goal), the table's primary key.
public struct EntryKey: Hashable, Sendable {
    public var userID: String
    public var goal: Int32

    public init(userID: String, goal: Int32) {
        self.userID = userID
        self.goal = goal
    }
}

/// The merged effect of every event of one (user, goal) since the last flush.
///
/// Field order is layout: `kind` and `events` share the first 8 bytes, so the struct is 32 bytes
/// with the arrival time, the stride it had without it.
public struct PendingProgress: Sendable, Equatable {
    public var kind: GoalUpdate.Kind
    /// How many events were merged into this entry.
    public var events: Int32
    /// `absolute`: the latest value. `increment`: the sum of the increments.
    public var value: Int64
    /// The sum of the increases of the merged events (see `GoalUpdate.increase`).
    public var increase: Int64
    /// When the oldest event merged into this entry arrived, in the caller's monotonic
    /// nanoseconds (0 when the caller does not track it): the start of the entry's
    /// event-to-commit latency.
    public var oldestEventAt: UInt64

    public init(kind: GoalUpdate.Kind, value: Int64, increase: Int64, events: Int32, oldestEventAt: UInt64 = 0) {
        self.kind = kind
        self.value = value
        self.increase = increase
        self.events = events
        self.oldestEventAt = oldestEventAt
    }

    init(_ update: GoalUpdate, at time: UInt64) {
        self.init(kind: update.kind, value: update.value, increase: update.increase, events: 1, oldestEventAt: time)
    }

    /// Merges a newer event into this entry: an absolute value is replaced, increments add up.
    mutating func merge(newer update: GoalUpdate) {
        switch update.kind {
        case .absolute: value = update.value
        case .increment: value &+= update.value
        }
        kind = update.kind
        increase &+= update.increase
        events &+= 1
    }

    /// Merges an older entry (one a failed flush gave back) under this newer one: the newer
    /// absolute value stands, increments and increases from both add up, so nothing is lost;
    /// the older entry's first event is the merged entry's oldest.
    mutating func merge(older: PendingProgress) {
        if kind == .increment && older.kind == .increment {
            value &+= older.value
        }
        increase &+= older.increase
        events &+= older.events
        oldestEventAt = min(oldestEventAt, older.oldestEventAt)
    }
}

/// One drained entry, as a flush worker receives it.
public struct PendingEntry: Sendable, Equatable {
    public var key: EntryKey
    public var progress: PendingProgress

    public init(key: EntryKey, progress: PendingProgress) {
        self.key = key
        self.progress = progress
    }

    public var userID: String { key.userID }
    public var goal: Int32 { key.goal }
}
