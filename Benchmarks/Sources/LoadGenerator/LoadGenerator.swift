import Foundation
import GRPCCore
import GameEvents

/// The bridge-shaped gRPC load: the benchmark event mix (`EventMix`) at the fixed arrival rate
/// of a profile (`ArrivalSchedule`), on ONE HTTP/2 connection with up to `maxInFlight` calls
/// out, as the game platform's event bridge sends it.
///
/// Cost: the calls go over `RawGRPCConnection` (frames written directly on one NIO HTTP/2
/// connection), not grpc-swift's `GRPCClient`, whose unary call measured ~300-570 µs of CPU per
/// call here: as much as the service spends per event, so on 2 shared cores the generator took
/// half the machine and its own scheduling delays showed up as the service's latency.
///
/// No coordinated omission: every event has an intended start from the schedule, and its
/// latency runs from there to the answer. When the loop falls behind, or an event waits for a
/// free slot because `maxInFlight` calls are out (counted as a slot wait), that wait is part of
/// its latency.
///
/// The scheduling loop is one task that wakes every `tick` (1 ms), builds the messages due and
/// hands them to the connection in one batch, and sleeps again: no timer or task per event.
/// Answers are recorded on the connection's event loop; deadlines are enforced there too.
public struct LoadGenerator: Sendable {
    public struct Options: Sendable {
        /// Prefix of every event id (`<runID>-<sequence>`): unique per run, so the service's
        /// deduplication never mistakes one run's events for another's.
        public var runID: String
        /// User `i`'s id (the runner passes `BenchCatalog.userID`); computed once per user.
        public var userID: @Sendable (Int) -> String
        public var users = 10_000
        public var namespace = "bench"
        /// Calls out at once on the connection (the bridge's window).
        public var maxInFlight = 500
        /// Each call's deadline from its sending; a call past it counts as DEADLINE_EXCEEDED
        /// and its answer, if one comes, is ignored (its stream is not reset: see
        /// `UnaryCallHandler`).
        public var deadline: Duration = .seconds(2)
        /// When set, the run stops once 5 consecutive seconds break a threshold (`BreakDetector`).
        public var breakThresholds: BreakThresholds?
        /// How often the scheduling loop wakes to send what is due.
        public var tick: Duration = .milliseconds(1)
        /// Called with each second once it is closed (from the scheduling loop: keep it short).
        public var onSecond: (@Sendable (SecondStats) -> Void)?

        public init(runID: String, userID: @escaping @Sendable (Int) -> String) {
            self.runID = runID
            self.userID = userID
        }
    }

    public let host: String
    public let port: Int
    public let profile: Profile
    public let options: Options

    public init(host: String, port: Int, profile: Profile, options: Options) {
        precondition(options.users > 0 && options.maxInFlight > 0, "a run needs users and at least one call in flight")
        precondition(options.tick > .zero, "the tick must be positive")
        self.host = host
        self.port = port
        self.profile = profile
        self.options = options
    }

    /// Runs the whole schedule (or until it breaks) and returns once every call was answered
    /// or timed out. Throws only when the target cannot be reached before the first event.
    /// Cancelling the calling task stops the schedule and cancels the calls out; the result so
    /// far is returned.
    public func run() async throws -> LoadResult {
        let schedule = ArrivalSchedule(profile)
        let userIDs = (0..<options.users).map(options.userID)
        let tally = RunTally(
            schedule: schedule, users: options.users, maxInFlight: options.maxInFlight, breakThresholds: options.breakThresholds)
        let connection: RawGRPCConnection
        do {
            connection = try await RawGRPCConnection.connect(host: host, port: port, deadline: options.deadline)
        } catch {
            throw LoadGeneratorError("no gRPC service answers at \(host):\(port): \(error)")
        }
        do {
            try await warmUp(connection)
        } catch {
            await connection.close()
            throw error
        }
        let encoder = EventEncoder(
            runID: options.runID, namespace: options.namespace, userIDs: userIDs,
            statCodes: EventMix<SystemRandomNumberGenerator>.statCodes)
        let start = ContinuousClock.now
        let run = await schedulingLoop(schedule: schedule, tally: tally, encoder: encoder, connection: connection, start: start)
        let wall = Self.seconds(ContinuousClock.now - start)
        let result = tally.result(
            runID: options.runID, intended: run.intended, durationSeconds: run.duration, wallSeconds: wall)
        await connection.close()
        return result
    }

    /// Sends every event when it is due, as slots allow, until the schedule ends (events still
    /// waiting for a slot then are not sent: `LoadResult.unsent`); returns after the last answer
    /// (or deadline) with the events the schedule made due and the seconds of schedule run.
    private func schedulingLoop(
        schedule: ArrivalSchedule, tally: RunTally, encoder: EventEncoder, connection: RawGRPCConnection,
        start: ContinuousClock.Instant
    ) async -> (intended: Int, duration: Double) {
        let tickNanos = Self.nanoseconds(options.tick)
        let end = schedule.duration
        let timestamps = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        var cursor = ArrivalSchedule.Cursor()
        var nextEvent = 0
        // Events below this index were already counted as slot waits.
        var waitsCountedTo = 0
        var stoppedAt: Double?
        // Whether the schedule is over (its end passed, or a break stopped it): nothing more is sent.
        var sendingDone = false
        while true {
            let elapsedNanos = Self.nanoseconds(ContinuousClock.now - start)
            let elapsed = Double(elapsedNanos) / 1e9
            let (closed, broke) = tally.advance(to: Int(elapsedNanos / 1_000_000_000))
            if let onSecond = options.onSecond { closed.forEach(onSecond) }
            if !sendingDone, broke != nil || Task.isCancelled {
                stoppedAt = elapsed
                sendingDone = true
                tally.stopSchedule(at: elapsed)
            }
            var waitingForSlots = false
            if !sendingDone {
                // The last pass, once the end has passed, still sends the events due up to it.
                let due = schedule.eventsDue(by: min(elapsed, end))
                if due > nextEvent {
                    let batch = tally.begin(upTo: due - nextEvent)
                    if !batch.isEmpty {
                        let timestamp = timestamps.format(Date())
                        var calls: [RawGRPCConnection.Call] = []
                        calls.reserveCapacity(batch.count)
                        for event in batch {
                            let intendedNanos = Int64(cursor.intendedTime(ofEvent: event.sequence, in: schedule) * 1e9)
                            let (path, message) = encoder.encode(event, timestamp: timestamp)
                            calls.append(
                                RawGRPCConnection.Call(path: path, message: message) { status in
                                    let answeredNanos = Self.nanoseconds(ContinuousClock.now - start)
                                    let failure = status == 0 ? nil : Status.Code(rawValue: status).flatMap(RPCError.Code.init) ?? .unknown
                                    tally.finish(event, latencyMicroseconds: (answeredNanos - intendedNanos) / 1000, failure: failure)
                                })
                        }
                        connection.start(calls)
                        nextEvent += batch.count
                    }
                    if nextEvent < due {
                        waitingForSlots = true
                        if due > waitsCountedTo {
                            tally.slotsWaited(due - max(nextEvent, waitsCountedTo))
                            waitsCountedTo = due
                        }
                    }
                }
                if elapsed >= end { sendingDone = true }
            } else if tally.inFlight == 0 {
                break
            }
            // Sleep to the next tick, or longer when nothing needs the loop before then: the
            // next event due, the next second to close. At low rates that spares most wake-ups;
            // the drain polls every tick.
            let nextTick = (elapsedNanos / tickNanos + 1) * tickNanos
            var wake = nextTick
            if !sendingDone, !waitingForSlots {
                let nextDue = nextEvent < schedule.totalEvents
                    ? Int64(cursor.intendedTime(ofEvent: nextEvent, in: schedule) * 1e9) : Int64(end * 1e9)
                let nextSecond = (elapsedNanos / 1_000_000_000 + 1) * 1_000_000_000
                wake = max(nextTick, (min(nextDue, nextSecond) + tickNanos - 1) / tickNanos * tickNanos)
            }
            if Task.isCancelled {
                // A cancelled task's sleep returns at once: sleep in a task that is not
                // cancelled, or the drain would spin until the last calls come back.
                await Task { try? await Task.sleep(until: start + .nanoseconds(wake), tolerance: .zero) }.value
            } else {
                try? await Task.sleep(until: start + .nanoseconds(wake), tolerance: .zero)
            }
        }
        let duration = stoppedAt ?? end
        return (schedule.eventsDue(by: duration), duration)
    }

    /// One call before the clock starts, so the connection is up and the first events do not
    /// pay for its set-up. The health check is enough: any answer (the naive peer answers
    /// UNIMPLEMENTED) proves the connection; UNAVAILABLE or no answer means nothing serves.
    private func warmUp(_ connection: RawGRPCConnection) async throws {
        let status = await withCheckedContinuation { (answered: CheckedContinuation<Int, Never>) in
            connection.start([.init(path: "/grpc.health.v1.Health/Check", message: []) { answered.resume(returning: $0) }])
        }
        if status == UnaryCallHandler.unavailable || status == UnaryCallHandler.deadlineExceeded {
            throw LoadGeneratorError("no gRPC service answers at \(host):\(port) (status \(status))")
        }
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    static func seconds(_ duration: Duration) -> Double { Double(nanoseconds(duration)) / 1e9 }
}

/// The run could not start.
public struct LoadGeneratorError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}
