@testable import EventHandler
import Buffer
import Catalog
import EventRules
import Foundation
import GameEvents
import ServiceTestSupport
import ProgressStore
import Storage
import TestSupport
import Testing

/// Goal semantics, table-driven, against a real PostgreSQL: for each case an initial row (or
/// none), steps of events at given instants (the clock crosses rotation boundaries between
/// steps), and the exact row afterwards. Events take the service's own path minus the
/// transport: `GoalMatcher` → `EventBuffer` → `ProgressWriter`. Every case runs twice: one flush
/// per step, and one flush per event, and must end the same.
@Suite("Goal semantics", .serialized)
struct GoalSemanticsTests {
    // MARK: - The catalog

    /// One goal per behaviour under test. `login-stray-statcode` is a login goal whose file also
    /// names a statCode: stat events must not move it (the incumbent leaked them into it).
    static let catalogJSON = """
        {"challenges": [{"challengeId": "sem", "name": "Semantics", "goals": [
          \(goal("login-abs", source: "login", target: 3)),
          \(goal("login-stray-statcode", source: "login", statCode: "kills", target: 5)),
          \(goal("login-rel-daily", source: "login", target: 2, mode: "relative", rotation: ("daily", true, false))),
          \(goal("kills-abs", statCode: "kills", target: 100)),
          \(goal("kills-assigned", statCode: "kills", target: 100, defaultAssigned: false)),
          \(goal("kills-rel", statCode: "kills", target: 10, mode: "relative")),
          \(goal("kills-daily-reset", statCode: "kills", target: 10, mode: "relative", rotation: ("daily", true, false))),
          \(goal("kills-daily-reselect", statCode: "kills", target: 10, mode: "relative", rotation: ("daily", true, true))),
          \(goal("kills-daily-keep", statCode: "kills", target: 10, mode: "relative", rotation: ("daily", false, true))),
          \(goal("kills-weekly", statCode: "kills", target: 10, mode: "relative", rotation: ("weekly", true, true))),
          \(goal("kills-monthly", statCode: "kills", target: 10, mode: "relative", rotation: ("monthly", true, true))),
          \(goal("wins-abs", statCode: "wins", target: 1))
        ]}]}
        """

    static func goal(
        _ id: String, source: String = "statistic", statCode: String? = nil, target: Int, mode: String = "absolute",
        defaultAssigned: Bool = true, rotation: (schedule: String, reset: Bool, reselect: Bool)? = nil
    ) -> String {
        let code = statCode.map { #""statCode": "\#($0)", "# } ?? ""
        let rotationJSON = rotation.map {
            #", "rotation": {"enabled": true, "type": "global", "schedule": "\#($0.schedule)", "onExpiry": {"resetProgress": \#($0.reset), "allowReselection": \#($0.reselect)}}"#
        } ?? ""
        return #"{"goalId": "\#(id)", "name": "\#(id)", "eventSource": "\#(source)", "defaultAssigned": \#(defaultAssigned), "requirement": {\#(code)"operator": ">=", "targetValue": \#(target), "progressMode": "\#(mode)"}, "reward": {"type": "ITEM", "rewardId": "r", "quantity": 1}, "prerequisites": []\#(rotationJSON)}"#
    }

    // MARK: - Cases

    struct Row: Equatable, CustomStringConvertible {
        var progress: Int
        var baseline: Int? = nil
        var status: String
        var completedAt: String? = nil
        var claimedAt: String? = nil
        var expiresAt: String? = nil
        var active = true
        var updatedAt: String

        var description: String {
            "progress=\(progress) baseline=\(baseline.map(String.init) ?? "NULL") status=\(status) "
                + "completed_at=\(completedAt ?? "NULL") claimed_at=\(claimedAt ?? "NULL") "
                + "expires_at=\(expiresAt ?? "NULL") active=\(active) updated_at=\(updatedAt)"
        }
    }

    enum Event {
        case login
        case stat(String, value: Double, inc: Double)

        static func kills(_ value: Double, inc: Double) -> Event { .stat("kills", value: value, inc: inc) }
    }

    struct Step {
        var at: String
        var events: [Event]
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var goal: String
        var initial: Row?
        var steps: [Step]
        var expected: Row?
        /// Events counted as unassigned over the whole case (non-default goals without a row).
        var unassigned = 0

        var testDescription: String { name }
    }

    static let cases: [Case] = [
        // Absolute goals.
        Case(
            name: "absolute stat, no row, default goal: created with the latest value",
            goal: "kills-abs", initial: nil,
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(40, inc: 40), .kills(55, inc: 15)])],
            expected: Row(progress: 55, status: "in_progress", updatedAt: "2026-03-14 10:00:00")),
        Case(
            name: "absolute stat reaches the target: completed, completed_at set once",
            goal: "kills-abs",
            initial: Row(progress: 90, status: "in_progress", updatedAt: "2026-03-14 09:00:00"),
            steps: [
                Step(at: "2026-03-14 10:00:00", events: [.kills(120, inc: 30)]),
                Step(at: "2026-03-14 11:00:00", events: [.kills(130, inc: 10)]),
            ],
            expected: Row(progress: 130, status: "completed", completedAt: "2026-03-14 10:00:00", updatedAt: "2026-03-14 11:00:00")),
        Case(
            name: "absolute: a completed row stays completed when the value drops",
            goal: "kills-abs",
            initial: Row(progress: 150, status: "completed", completedAt: "2026-03-01 00:00:00", updatedAt: "2026-03-01 00:00:00"),
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(20, inc: -130)])],
            expected: Row(progress: 20, status: "completed", completedAt: "2026-03-01 00:00:00", updatedAt: "2026-03-14 10:00:00")),
        Case(
            name: "a claimed row of a goal without rotation is never touched",
            goal: "kills-abs",
            initial: Row(
                progress: 150, status: "claimed", completedAt: "2026-03-01 00:00:00", claimedAt: "2026-03-02 00:00:00",
                updatedAt: "2026-03-02 00:00:00"),
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(300, inc: 150)])],
            expected: Row(
                progress: 150, status: "claimed", completedAt: "2026-03-01 00:00:00", claimedAt: "2026-03-02 00:00:00",
                updatedAt: "2026-03-02 00:00:00")),
        Case(
            name: "an inactive row of a default goal is never touched",
            goal: "kills-abs",
            initial: Row(progress: 5, status: "in_progress", active: false, updatedAt: "2026-03-01 00:00:00"),
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(60, inc: 55)])],
            expected: Row(progress: 5, status: "in_progress", active: false, updatedAt: "2026-03-01 00:00:00")),
        Case(
            name: "non-default goal without a row: no row is created, its events are counted unassigned",
            goal: "kills-assigned", initial: nil,
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(40, inc: 40), .kills(50, inc: 10)])],
            expected: nil, unassigned: 2),
        Case(
            name: "non-default goal with an active row (assigned by the REST side): updated",
            goal: "kills-assigned",
            initial: Row(progress: 0, status: "not_started", updatedAt: "2026-03-01 00:00:00"),
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(60, inc: 60)])],
            expected: Row(progress: 60, status: "in_progress", updatedAt: "2026-03-14 10:00:00")),
        Case(
            name: "non-default goal with an inactive row: untouched, its events counted unassigned",
            goal: "kills-assigned",
            initial: Row(progress: 7, status: "in_progress", active: false, updatedAt: "2026-03-01 00:00:00"),
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(60, inc: 53)])],
            expected: Row(progress: 7, status: "in_progress", active: false, updatedAt: "2026-03-01 00:00:00"),
            unassigned: 1),

        // Which events move which goals.
        Case(
            name: "login goal: logins add up and complete at the target",
            goal: "login-abs", initial: nil,
            steps: [Step(at: "2026-03-14 10:00:00", events: [.login, .login, .login])],
            expected: Row(progress: 3, status: "completed", completedAt: "2026-03-14 10:00:00", updatedAt: "2026-03-14 10:00:00")),
        Case(
            name: "a login goal whose file names a statCode moves on logins only, never on that stat",
            goal: "login-stray-statcode", initial: nil,
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(40, inc: 40), .login, .kills(90, inc: 50)])],
            expected: Row(progress: 1, status: "in_progress", updatedAt: "2026-03-14 10:00:00")),
        Case(
            name: "login events never move a statistic goal",
            goal: "wins-abs", initial: nil,
            steps: [Step(at: "2026-03-14 10:00:00", events: [.login, .login])],
            expected: nil),
        Case(
            name: "a stat event moves only the goals of its statCode",
            goal: "wins-abs", initial: nil,
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(40, inc: 40), .stat("wins", value: 1, inc: 1)])],
            expected: Row(progress: 1, status: "completed", completedAt: "2026-03-14 10:00:00", updatedAt: "2026-03-14 10:00:00")),

        // Relative goals without rotation.
        Case(
            name: "relative, first write: baseline = latest value less the sum of the batch's increases",
            goal: "kills-rel", initial: nil,
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(1000, inc: 3), .kills(1004, inc: 4)])],
            expected: Row(progress: 1004, baseline: 997, status: "in_progress", updatedAt: "2026-03-14 10:00:00")),
        Case(
            name: "relative completes on shown progress (progress - baseline), not on the stat's value",
            goal: "kills-rel", initial: nil,
            steps: [
                Step(at: "2026-03-14 10:00:00", events: [.kills(1000, inc: 3), .kills(1004, inc: 4)]),
                Step(at: "2026-03-14 11:00:00", events: [.kills(1006, inc: 2)]),
                Step(at: "2026-03-14 12:00:00", events: [.kills(1007, inc: 1)]),
            ],
            expected: Row(
                progress: 1007, baseline: 997, status: "completed", completedAt: "2026-03-14 12:00:00",
                updatedAt: "2026-03-14 12:00:00")),
        Case(
            name: "relative, first write on a row the REST side assigned (baseline NULL): baseline placed",
            goal: "kills-rel",
            initial: Row(progress: 0, status: "not_started", updatedAt: "2026-03-01 00:00:00"),
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(500, inc: 5)])],
            expected: Row(progress: 500, baseline: 495, status: "in_progress", updatedAt: "2026-03-14 10:00:00")),
        Case(
            name: "relative: the baseline is never negative",
            goal: "kills-rel", initial: nil,
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(3, inc: 10)])],
            expected: Row(progress: 3, baseline: 0, status: "in_progress", updatedAt: "2026-03-14 10:00:00")),

        // Daily rotation.
        Case(
            name: "daily rotation, no row: created with its baseline and expires_at the next midnight",
            goal: "kills-daily-reset", initial: nil,
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(50, inc: 5)])],
            expected: Row(
                progress: 50, baseline: 45, status: "in_progress", expiresAt: "2026-03-15 00:00:00",
                updatedAt: "2026-03-14 10:00:00")),
        Case(
            name: "daily, same period: no rollover, the baseline stays",
            goal: "kills-daily-reset",
            initial: Row(
                progress: 1000, baseline: 995, status: "in_progress", expiresAt: "2026-03-15 00:00:00",
                updatedAt: "2026-03-14 08:00:00"),
            steps: [Step(at: "2026-03-14 23:59:59", events: [.kills(1003, inc: 3)])],
            expected: Row(
                progress: 1003, baseline: 995, status: "in_progress", expiresAt: "2026-03-15 00:00:00",
                updatedAt: "2026-03-14 23:59:59")),
        Case(
            name: "daily, stale with resetProgress: re-based at the boundary",
            goal: "kills-daily-reset",
            initial: Row(
                progress: 1008, baseline: 995, status: "completed", completedAt: "2026-03-14 09:00:00",
                expiresAt: "2026-03-15 00:00:00", updatedAt: "2026-03-14 09:00:00"),
            steps: [Step(at: "2026-03-15 00:00:00", events: [.kills(1010, inc: 2)])],
            expected: Row(
                progress: 1010, baseline: 1008, status: "in_progress", expiresAt: "2026-03-16 00:00:00",
                updatedAt: "2026-03-15 00:00:00")),
        Case(
            name: "daily, a completed row stays completed within its period as the value drops",
            goal: "kills-daily-reset",
            initial: Row(
                progress: 1008, baseline: 995, status: "completed", completedAt: "2026-03-14 09:00:00",
                expiresAt: "2026-03-15 00:00:00", updatedAt: "2026-03-14 09:00:00"),
            steps: [Step(at: "2026-03-14 22:00:00", events: [.kills(996, inc: -12)])],
            expected: Row(
                progress: 996, baseline: 995, status: "completed", completedAt: "2026-03-14 09:00:00",
                expiresAt: "2026-03-15 00:00:00", updatedAt: "2026-03-14 22:00:00")),
        Case(
            name: "daily, stale without resetProgress: progress carries over",
            goal: "kills-daily-keep",
            initial: Row(
                progress: 1000, baseline: 995, status: "in_progress", expiresAt: "2026-03-15 00:00:00",
                updatedAt: "2026-03-14 08:00:00"),
            steps: [Step(at: "2026-03-15 06:00:00", events: [.kills(1002, inc: 2)])],
            expected: Row(
                progress: 1002, baseline: 995, status: "in_progress", expiresAt: "2026-03-16 00:00:00",
                updatedAt: "2026-03-15 06:00:00")),
        Case(
            name: "daily, stale without resetProgress, completed: still completed, first completed_at kept",
            goal: "kills-daily-keep",
            initial: Row(
                progress: 1007, baseline: 995, status: "completed", completedAt: "2026-03-14 09:00:00",
                expiresAt: "2026-03-15 00:00:00", updatedAt: "2026-03-14 09:00:00"),
            steps: [Step(at: "2026-03-15 06:00:00", events: [.kills(1008, inc: 1)])],
            expected: Row(
                progress: 1008, baseline: 995, status: "completed", completedAt: "2026-03-14 09:00:00",
                expiresAt: "2026-03-16 00:00:00", updatedAt: "2026-03-15 06:00:00")),
        Case(
            name: "daily, claimed, stale, allowReselection: reopened with this period's progress",
            goal: "kills-daily-reselect",
            initial: Row(
                progress: 1010, baseline: 995, status: "claimed", completedAt: "2026-03-14 09:00:00",
                claimedAt: "2026-03-14 10:00:00", expiresAt: "2026-03-15 00:00:00", updatedAt: "2026-03-14 09:00:00"),
            steps: [Step(at: "2026-03-15 08:00:00", events: [.kills(1014, inc: 4)])],
            expected: Row(
                progress: 1014, baseline: 1010, status: "in_progress", expiresAt: "2026-03-16 00:00:00",
                updatedAt: "2026-03-15 08:00:00")),
        Case(
            name: "daily, claimed, stale, allowReselection: completes again in the new period",
            goal: "kills-daily-reselect",
            initial: Row(
                progress: 1010, baseline: 995, status: "claimed", completedAt: "2026-03-14 09:00:00",
                claimedAt: "2026-03-14 10:00:00", expiresAt: "2026-03-15 00:00:00", updatedAt: "2026-03-14 09:00:00"),
            steps: [
                Step(at: "2026-03-15 08:00:00", events: [.kills(1015, inc: 5)]),
                Step(at: "2026-03-15 09:00:00", events: [.kills(1022, inc: 7)]),
            ],
            expected: Row(
                progress: 1022, baseline: 1010, status: "completed", completedAt: "2026-03-15 09:00:00",
                expiresAt: "2026-03-16 00:00:00", updatedAt: "2026-03-15 09:00:00")),
        Case(
            name: "daily, claimed in the same period, allowReselection: untouched",
            goal: "kills-daily-reselect",
            initial: Row(
                progress: 1010, baseline: 995, status: "claimed", completedAt: "2026-03-14 09:00:00",
                claimedAt: "2026-03-14 10:00:00", expiresAt: "2026-03-15 00:00:00", updatedAt: "2026-03-14 09:00:00"),
            steps: [Step(at: "2026-03-14 20:00:00", events: [.kills(1014, inc: 4)])],
            expected: Row(
                progress: 1010, baseline: 995, status: "claimed", completedAt: "2026-03-14 09:00:00",
                claimedAt: "2026-03-14 10:00:00", expiresAt: "2026-03-15 00:00:00", updatedAt: "2026-03-14 09:00:00")),
        Case(
            name: "daily, claimed, stale, no reselection: never touched",
            goal: "kills-daily-reset",
            initial: Row(
                progress: 1010, baseline: 995, status: "claimed", completedAt: "2026-03-14 09:00:00",
                claimedAt: "2026-03-14 10:00:00", expiresAt: "2026-03-15 00:00:00", updatedAt: "2026-03-14 09:00:00"),
            steps: [Step(at: "2026-03-16 08:00:00", events: [.kills(1030, inc: 20)])],
            expected: Row(
                progress: 1010, baseline: 995, status: "claimed", completedAt: "2026-03-14 09:00:00",
                claimedAt: "2026-03-14 10:00:00", expiresAt: "2026-03-15 00:00:00", updatedAt: "2026-03-14 09:00:00")),
        Case(
            name: "daily, claimed, stale, reselection without reset: reopened with progress carried, completed anew",
            goal: "kills-daily-keep",
            initial: Row(
                progress: 1010, baseline: 995, status: "claimed", completedAt: "2026-03-14 09:00:00",
                claimedAt: "2026-03-14 10:00:00", expiresAt: "2026-03-15 00:00:00", updatedAt: "2026-03-14 09:00:00"),
            steps: [Step(at: "2026-03-15 08:00:00", events: [.kills(1011, inc: 1)])],
            expected: Row(
                progress: 1011, baseline: 995, status: "completed", completedAt: "2026-03-15 08:00:00",
                expiresAt: "2026-03-16 00:00:00", updatedAt: "2026-03-15 08:00:00")),
        Case(
            name: "daily: a row assigned before this period and never written is stale (re-based on first write)",
            goal: "kills-daily-reset",
            initial: Row(progress: 0, status: "not_started", updatedAt: "2026-03-10 00:00:00"),
            steps: [Step(at: "2026-03-14 10:00:00", events: [.kills(500, inc: 5)])],
            expected: Row(
                progress: 500, baseline: 495, status: "in_progress", expiresAt: "2026-03-15 00:00:00",
                updatedAt: "2026-03-14 10:00:00")),
        Case(
            name: "daily login goal: completes, then rolls over the next day and counts from zero",
            goal: "login-rel-daily", initial: nil,
            steps: [
                Step(at: "2026-03-14 10:00:00", events: [.login, .login]),
                Step(at: "2026-03-15 10:00:00", events: [.login]),
            ],
            expected: Row(
                progress: 3, baseline: 2, status: "in_progress", expiresAt: "2026-03-16 00:00:00",
                updatedAt: "2026-03-15 10:00:00")),
        Case(
            name: "daily across a leap day: Feb 28 → Feb 29 → Mar 1, a new period each",
            goal: "kills-daily-reset", initial: nil,
            steps: [
                Step(at: "2028-02-28 23:00:00", events: [.kills(100, inc: 1)]),
                Step(at: "2028-02-29 00:30:00", events: [.kills(103, inc: 3)]),
                Step(at: "2028-03-01 00:00:00", events: [.kills(110, inc: 7)]),
            ],
            expected: Row(
                progress: 110, baseline: 103, status: "in_progress", expiresAt: "2028-03-02 00:00:00",
                updatedAt: "2028-03-01 00:00:00")),

        // Weekly rotation (Monday 00:00 UTC; 2026-03-15 is a Sunday).
        Case(
            name: "weekly: Sunday 23:59:59 and Monday 00:00 are different periods",
            goal: "kills-weekly",
            initial: Row(
                progress: 120, baseline: 100, status: "completed", completedAt: "2026-03-15 23:59:59",
                expiresAt: "2026-03-16 00:00:00", updatedAt: "2026-03-15 23:59:59"),
            steps: [Step(at: "2026-03-16 00:00:00", events: [.kills(123, inc: 3)])],
            expected: Row(
                progress: 123, baseline: 120, status: "in_progress", expiresAt: "2026-03-23 00:00:00",
                updatedAt: "2026-03-16 00:00:00")),
        Case(
            name: "weekly: Monday 00:00 to Sunday 23:59:59 is one period",
            goal: "kills-weekly",
            initial: Row(
                progress: 104, baseline: 100, status: "in_progress", expiresAt: "2026-03-16 00:00:00",
                updatedAt: "2026-03-09 00:00:00"),
            steps: [Step(at: "2026-03-15 23:59:59", events: [.kills(106, inc: 2)])],
            expected: Row(
                progress: 106, baseline: 100, status: "in_progress", expiresAt: "2026-03-16 00:00:00",
                updatedAt: "2026-03-15 23:59:59")),

        // Monthly rotation (the 1st, 00:00 UTC).
        Case(
            name: "monthly: Jan 31 → Feb 1 rolls over; expires Mar 1",
            goal: "kills-monthly",
            initial: Row(
                progress: 104, baseline: 100, status: "in_progress", expiresAt: "2026-02-01 00:00:00",
                updatedAt: "2026-01-31 23:00:00"),
            steps: [Step(at: "2026-02-01 00:00:00", events: [.kills(105, inc: 1)])],
            expected: Row(
                progress: 105, baseline: 104, status: "in_progress", expiresAt: "2026-03-01 00:00:00",
                updatedAt: "2026-02-01 00:00:00")),
        Case(
            name: "monthly, leap year: Feb 29 is in February's period; expires Mar 1",
            goal: "kills-monthly",
            initial: Row(
                progress: 104, baseline: 100, status: "in_progress", expiresAt: "2028-03-01 00:00:00",
                updatedAt: "2028-02-01 00:00:00"),
            steps: [Step(at: "2028-02-29 12:00:00", events: [.kills(107, inc: 3)])],
            expected: Row(
                progress: 107, baseline: 100, status: "in_progress", expiresAt: "2028-03-01 00:00:00",
                updatedAt: "2028-02-29 12:00:00")),
        Case(
            name: "monthly: Dec 31 → Jan 1 crosses the year; expires Feb 1",
            goal: "kills-monthly", initial: nil,
            steps: [
                Step(at: "2026-12-31 23:59:59", events: [.kills(200, inc: 12)]),
                Step(at: "2027-01-01 00:00:00", events: [.kills(204, inc: 4)]),
            ],
            expected: Row(
                progress: 204, baseline: 200, status: "in_progress", expiresAt: "2027-02-01 00:00:00",
                updatedAt: "2027-01-01 00:00:00")),
    ]

    // MARK: - Running a case

    enum Delivery: String, CaseIterable, Sendable {
        /// All of a step's events merged in the buffer, written by one flush.
        case oneFlushPerStep
        /// A flush after every event.
        case flushPerEvent
    }

    final class Fixture: Sendable {
        let database: String
        let catalog: Catalog
        let matcher: GoalMatcher
        let writer: ProgressWriter

        init() throws {
            database = try PostgresServer.shared.makeDatabase()
            _ = try PostgresServer.shared.migrate(database: database)
            let loaded = try Catalog.parse(Array(GoalSemanticsTests.catalogJSON.utf8), fileName: "semantics.json")
            catalog = loaded.catalog
            matcher = GoalMatcher(catalog: catalog)
            writer = ProgressWriter(catalog: catalog, namespace: "sem-ns")
        }
    }

    static let fixture = Result { try Fixture() }

    @Test("every case ends with the exact row", arguments: cases, Delivery.allCases)
    func exactRow(_ testCase: Case, delivery: Delivery) throws {
        let fixture = try Self.fixture.get()
        let server = PostgresServer.shared
        let connection = try PostgresConnection(settings: server.settings(database: fixture.database))
        defer { connection.close() }
        for statement in ProgressWriter.preparedStatements { try connection.prepare(statement.name, statement.sql) }
        // Through the statement the writer chooses (the plain one for a goal neither relative nor
        // rotating) and through the full one: the same row either way.
        for statements in [ProgressWriter.Statements.chosen, .full] {
            let user = "u-\(UUID().uuidString.prefix(13))"
            let goal = try #require(fixture.catalog.goal(id: testCase.goal))

            if let initial = testCase.initial {
                try connection.execute(
                    """
                    INSERT INTO user_goal_progress (user_id, goal_id, challenge_id, namespace, progress, baseline_value,
                        status, completed_at, claimed_at, expires_at, is_active, created_at, updated_at, assigned_at)
                    VALUES ($1, $2, $3, 'sem-ns', $4::int4, $5::int4, $6, $7::timestamp, $8::timestamp, $9::timestamp,
                        $10::bool, $11::timestamp, $11::timestamp, $11::timestamp)
                    """,
                    [
                        .text(user), .text(goal.goalId), .text(goal.challengeId), .text(String(initial.progress)),
                        initial.baseline.map { .text(String($0)) } ?? .null, .text(initial.status),
                        initial.completedAt.map { .text($0) } ?? .null, initial.claimedAt.map { .text($0) } ?? .null,
                        initial.expiresAt.map { .text($0) } ?? .null, .text(initial.active ? "true" : "false"),
                        .text(initial.updatedAt),
                    ])
            }

            let buffer = EventBuffer(shardCount: 4, limit: 10_000)
            var unassigned = 0
            func flush(at instant: Date) throws {
                let entries = (0..<buffer.shardCount).flatMap { buffer.drain(shard: $0) }
                unassigned += try fixture.writer.write(entries, now: instant, on: connection, statements: statements).unassignedEvents
            }
            for (n, step) in testCase.steps.enumerated() {
                let instant = try Self.date(step.at)
                for (k, event) in step.events.enumerated() {
                    let incoming: IncomingEvent
                    switch event {
                    case .login:
                        incoming = .login(.init(id: "e\(n)-\(k)", namespace: "sem-ns", userID: user))
                    case .stat(let code, let value, let inc):
                        incoming = .stat(
                            .init(
                                id: "e\(n)-\(k)", namespace: "sem-ns", userID: user,
                                payload: .init(statCode: code, latestValue: value, inc: inc)))
                    }
                    // Only the goal under test is written: the other goals' rows would be other cases.
                    let updates = fixture.matcher.updates(for: incoming).filter { $0.goal == goal.index }
                    _ = buffer.add(userID: user, updates: updates)
                    if delivery == .flushPerEvent { try flush(at: instant) }
                }
                if delivery == .oneFlushPerStep { try flush(at: instant) }
            }

            let rows = try server.query(
                """
                SELECT progress, baseline_value, status, completed_at, claimed_at, expires_at, is_active, updated_at
                FROM user_goal_progress WHERE user_id = '\(user)' AND goal_id = '\(goal.goalId)'
                """, database: fixture.database)
            let actual = rows.first.map { row in
                Row(
                    progress: Int(row[0]!)!, baseline: row[1].flatMap { Int($0) }, status: row[2]!, completedAt: row[3],
                    claimedAt: row[4], expiresAt: row[5], active: row[6] == "t", updatedAt: row[7]!)
            }
            #expect(actual == testCase.expected, "\(statements) statement\n  expected \(testCase.expected.map { "\($0)" } ?? "no row")\n  got      \(actual.map { "\($0)" } ?? "no row")")
            #expect(unassigned == testCase.unassigned, "unassigned events, \(statements) statement")
        }
    }

    @Test("the running service takes relative and rotating goals: baseline and expires_at over gRPC", .timeLimit(.minutes(3)))
    func endToEnd() async throws {
        let harness = try ServiceHarness(server: .shared, catalogJSON: Self.catalogJSON, namespace: "sem-ns")
        try await harness.withClients { _, stat in
            for (value, inc) in [(1000.0, 3.0), (1004.0, 4.0)] {
                _ = try await stat.onMessage(
                    .with {
                        $0.id = "k\(Int(value))"
                        $0.namespace = "sem-ns"
                        $0.userID = "player-1"
                        $0.payload.statCode = "kills"
                        $0.payload.latestValue = value
                        $0.payload.inc = inc
                    })
            }
        }
        #expect(try harness.stop() == 0)
        let rows = try harness.server.query(
            """
            SELECT goal_id, progress, baseline_value, status, expires_at = date_trunc('day', updated_at) + interval '1 day'
            FROM user_goal_progress WHERE user_id = 'player-1' ORDER BY goal_id
            """, database: harness.database)
        let byGoal = Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, Array($0.dropFirst())) })
        // Merged in one flush or written twice, the baseline is 1004 - (3 + 4) = 997 either way.
        #expect(byGoal["kills-rel"] == ["1004", "997", "in_progress", nil])
        #expect(byGoal["kills-daily-reset"] == ["1004", "997", "in_progress", "t"])
        #expect(byGoal["kills-abs"] == ["1004", nil, "completed", nil])
        #expect(byGoal["kills-assigned"] == nil)
        #expect(byGoal["login-stray-statcode"] == nil)
        #expect(harness.process.log.contains("relative=7"), "\(harness.process.log)")
    }

    static func date(_ text: String) throws -> Date {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        guard let date = formatter.date(from: text) else { throw CaseError("bad instant \(text)") }
        return date
    }

    struct CaseError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
