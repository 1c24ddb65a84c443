import Logging
import Synchronization

/// Log lines for what the ingest path otherwise only counts, so the two commonest "nothing is
/// stored" mistakes show in the log and not only in the metrics: events of another namespace
/// (`events_ignored_total{reason="other_namespace"}`) and a memory limit refusing events
/// (`events_rejected_total{reason="buffer_full"}` and the other `Pushback` reasons,
/// `buffer_backpressure_activations_total`).
///
/// Never one line per event. Another namespace: the first such event is logged at once, later
/// ones at most once per `interval` (a minute), each line with the count since the previous
/// one. A full buffer (or another memory limit, each apart): a line when back-pressure starts and one when it ends (the buffer took a
/// new entry again), the start at most once per `interval`: a buffer that fills at every flush
/// under sustained overload logs two lines a minute, the first saying how many times it filled.
/// An episode whose start was not logged ends without a line. On the event path: relaxed
/// atomics, and a clock read only for an event of another namespace or a refusal that starts
/// back-pressure.
final class IngestNotices: Sendable {
    private let logger: Logger
    /// `AB_NAMESPACE`.
    private let namespace: String
    /// The limits' values, by `Pushback.index` (`BUFFER_SIZE_LIMIT`, ...).
    private let limits: [Int]
    /// Nanoseconds between two lines of a kind.
    private let interval: UInt64
    /// Monotonic nanoseconds (a parameter for the tests).
    private let clock: @Sendable () -> UInt64

    /// Events of another namespace since the last line about them.
    private let foreign = Atomic<Int>(0)
    private let foreignLines = LogLinePace()

    /// Each limit's lines (by `Pushback.index`), rate-limited apart: one limit's line does not
    /// hide another's.
    private let episodes: [Episode] = Pushback.allCases.map { _ in Episode() }

    private final class Episode: Sendable {
        /// Back-pressure starts since the last "full" line.
        let fills = Atomic<Int>(0)
        let fullLines = LogLinePace()
        /// Set by a logged "full" line, cleared by the "room again" line that ends its episode.
        let fullLogged = Atomic<Bool>(false)
        let fullLoggedAt = Atomic<UInt64>(0)
        /// Refusals since the last "full" line.
        let refusals = Atomic<Int>(0)
    }

    static let oneMinute: UInt64 = 60_000_000_000

    init(
        namespace: String, limits: [Pushback: Int], logger: Logger, interval: UInt64 = IngestNotices.oneMinute,
        clock: @escaping @Sendable () -> UInt64 = { MonotonicTime.now }
    ) {
        self.namespace = namespace
        self.limits = Pushback.allCases.map { limits[$0] ?? 0 }
        self.logger = logger
        self.interval = interval
        self.clock = clock
    }

    /// An event of `eventNamespace` was ignored. (A Kafka record offered again after a refusal
    /// earlier in its poll is screened, so counted, again: the count can run a little high.)
    func otherNamespace(_ eventNamespace: String) {
        foreign.add(1, ordering: .relaxed)
        guard foreignLines.due(at: clock(), interval: interval) else { return }
        logger.warning(
            "events of another namespace ignored: answered OK, never stored (logged at most once a minute)",
            metadata: [
                "namespace": "\(Self.printable(eventNamespace))", "ab_namespace": "\(namespace)",
                "ignored": "\(foreign.exchange(0, ordering: .relaxed))",
            ])
    }

    /// An event was refused for `limit`; `started`: the first refusal since that limit last had
    /// room (a back-pressure activation).
    func refused(started: Bool, limit: Pushback = .bufferFull) {
        let episode = episodes[limit.index]
        if started {
            episode.fills.add(1, ordering: .relaxed)
            if episode.fullLines.due(at: clock(), interval: interval) {
                episode.refusals.store(0, ordering: .relaxed)
                episode.fullLoggedAt.store(clock(), ordering: .relaxed)
                episode.fullLogged.store(true, ordering: .releasing)
                logger.warning(
                    "\(Self.full(limit)) (gRPC answers RESOURCE_EXHAUSTED, Kafka consumption pauses)",
                    metadata: ["limit": "\(limits[limit.index])", "times_full": "\(episode.fills.exchange(0, ordering: .relaxed))"])
            }
        }
        episode.refusals.add(1, ordering: .relaxed)
    }

    private static func full(_ limit: Pushback) -> String {
        switch limit {
        case .bufferFull: "event buffer full (BUFFER_SIZE_LIMIT): refusing new entries until a flush frees room"
        case .eventIDLimit:
            "too many accepted events wait for their commit (BUFFER_EVENT_ID_LIMIT): refusing new events with an id until a flush commits"
        case .waitingLimit: "too many calls wait for their commit (ACK_WAITING_LIMIT): refusing new durable calls until a flush commits"
        }
    }

    /// `limit` has room again after refusing some: back-pressure is over.
    func roomAgain(_ limit: Pushback = .bufferFull) {
        let episode = episodes[limit.index]
        guard episode.fullLogged.exchange(false, ordering: .acquiring) else { return }
        let now = clock()
        let since = episode.fullLoggedAt.load(ordering: .relaxed)
        logger.info(
            "\(limit == .bufferFull ? "event buffer has room again: taking new entries" : "\(limit.setting) has room again: taking events")",
            metadata: [
                "refused": "\(episode.refusals.load(ordering: .relaxed))",
                "duration_ms": "\(now > since ? (now - since) / 1_000_000 : 0)",
            ])
    }

    /// A namespace as the sender wrote it, safe for one log line: printable ASCII, at most 64
    /// characters; anything else becomes `?`; none at all, `(empty)`.
    static func printable(_ text: String) -> String {
        if text.isEmpty { return "(empty)" }
        var out = ""
        for scalar in text.unicodeScalars.prefix(64) {
            out.unicodeScalars.append((0x21...0x7e).contains(scalar.value) ? scalar : "?")
        }
        return text.unicodeScalars.count > 64 ? out + "…" : out
    }
}
