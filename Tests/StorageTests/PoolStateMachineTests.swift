@testable import Storage
import Testing
import TestSupport

/// The pool's decisions without a server: fairness, limits, timeouts, expiry and closing,
/// step by step and under a seeded random walk that checks the invariants after every step.
@Suite("PoolStateMachine, without a server")
struct PoolStateMachineTests {
    final class Connection: PooledConnection, CustomStringConvertible {
        let id: Int
        let createdAt: ContinuousClock.Instant
        init(_ id: Int, createdAt: ContinuousClock.Instant) {
            self.id = id
            self.createdAt = createdAt
        }
        var description: String { "c\(id)" }
    }

    final class Waiter: CustomStringConvertible {
        let id: Int
        init(_ id: Int) { self.id = id }
        var description: String { "w\(id)" }
    }

    typealias Machine = PoolStateMachine<Connection, Waiter>

    let t0 = ContinuousClock.now

    func limits(maxOpen: Int, maxIdle: Int, lifetime: Duration = .seconds(1_800), idleTime: Duration = .seconds(300))
        -> PoolLimits
    {
        PoolLimits(maxOpen: maxOpen, maxIdle: maxIdle, maxLifetime: lifetime, maxIdleTime: idleTime)
    }

    /// Which waiter a handoff went to and what it got, as a short string ("w1:c2", "w3:slot").
    func describe(_ handoff: Machine.Handoff?) -> String? {
        guard let handoff else { return nil }
        switch handoff.grant {
        case .connection(let connection): return "\(handoff.waiter):\(connection)"
        case .openSlot: return "\(handoff.waiter):slot"
        case .poolClosed: return "\(handoff.waiter):closed"
        }
    }

    func checkInvariants(_ machine: Machine) {
        #expect(machine.openCount <= machine.limits.maxOpen)
        #expect(machine.idle.count <= machine.maxIdle)
        #expect(machine.lent >= 0 && machine.opening >= 0)
        if !machine.waiters.isEmpty {
            #expect(machine.idle.isEmpty, "a waiter waits while a connection is idle")
            #expect(machine.openCount == machine.limits.maxOpen, "a waiter waits while a slot is free")
        }
    }

    @Test func waitersAreServedInArrivalOrderWithConnectionsThenSlots() {
        var machine = Machine(limits: limits(maxOpen: 2, maxIdle: 2))
        var waiterID = 0
        func checkOut() -> Machine.CheckOut {
            machine.checkOut(now: t0, makeWaiter: {
                waiterID += 1
                return Waiter(waiterID)
            })
        }
        guard case .open = checkOut(), case .open = checkOut() else {
            Issue.record("the first two checkouts should open")
            return
        }
        machine.openSucceeded()
        machine.openSucceeded()
        let a = Connection(1, createdAt: t0)
        let b = Connection(2, createdAt: t0)
        for _ in 0..<3 {
            guard case .wait = checkOut() else {
                Issue.record("past maxOpen a checkout should wait")
                return
            }
        }
        #expect(machine.waitCount == 3)
        checkInvariants(machine)

        // A healthy return goes to the oldest waiter, still counted as lent.
        guard case .handedOver(let first) = machine.checkIn(a, unusable: nil, now: t0) else {
            Issue.record("a healthy connection should go to the first waiter")
            return
        }
        #expect(describe(first) == "w1:c1")
        #expect(machine.lent == 2)
        // A broken one is closed and its slot goes to the next waiter, which opens a new one.
        guard case .close(let reason, let slot) = machine.checkIn(b, unusable: "connection failure", now: t0) else {
            Issue.record("a broken connection should be closed")
            return
        }
        #expect(reason == "connection failure")
        #expect(describe(slot) == "w2:slot")
        #expect(machine.opening == 1 && machine.lent == 1)
        // That open fails: the slot moves on to the last waiter.
        let failedSlot = machine.openFailed()
        #expect(describe(failedSlot) == "w3:slot")
        #expect(machine.waiters.isEmpty)
        checkInvariants(machine)
        #expect(machine.stats == PoolStats(active: 2, idle: 0, max: 2, waitCount: 3, opened: 2, closed: 1))
    }

    @Test func aTimedOutWaiterGetsNothingAndOneAlreadyServedKeepsItsGrant() {
        var machine = Machine(limits: limits(maxOpen: 1, maxIdle: 1))
        guard case .open = machine.checkOut(now: t0, makeWaiter: { Waiter(0) }) else {
            Issue.record("the first checkout should open")
            return
        }
        machine.openSucceeded()
        let early = Waiter(1)
        let late = Waiter(2)
        _ = machine.checkOut(now: t0, makeWaiter: { early })
        _ = machine.checkOut(now: t0, makeWaiter: { late })
        let earlyTimedOut = machine.waiterTimedOut(early)
        let earlyTimedOutAgain = machine.waiterTimedOut(early)
        #expect(earlyTimedOut)
        #expect(!earlyTimedOutAgain, "timed out twice")
        // The connection skips the waiter that gave up.
        let connection = Connection(1, createdAt: t0)
        guard case .handedOver(let handoff) = machine.checkIn(connection, unusable: nil, now: t0) else {
            Issue.record("the connection should go to the waiter still queued")
            return
        }
        #expect(handoff.waiter === late)
        // Its deadline passing now changes nothing: the grant is already its own.
        let lateTimedOut = machine.waiterTimedOut(late)
        #expect(!lateTimedOut)
        checkInvariants(machine)
    }

    @Test func expiryRetiresIdleConnectionsAndMaxLifetimeClosesReturnedOnes() {
        var machine = Machine(limits: limits(maxOpen: 3, maxIdle: 3, lifetime: .seconds(60), idleTime: .seconds(10)))
        let reserved = machine.reserveWarmUp()
        #expect(reserved == 3)
        let old = Connection(1, createdAt: t0 - .seconds(55))
        let fresh = Connection(2, createdAt: t0)
        // One of the three opens failed: its slot is simply free (no one waits).
        let placed = machine.finishWarmUp(reserved: 3, connections: [old, fresh], now: t0)
        #expect(placed.handoffs.isEmpty && placed.surplus.isEmpty)
        #expect(machine.stats == PoolStats(active: 0, idle: 2, max: 3, opened: 2))

        // 6 s later `old` is past its lifetime (61 s), `fresh` is not idle long enough.
        let reaped = machine.reap(now: t0 + .seconds(6))
        #expect(reaped.expired.map(\.id) == [1])
        // A checkout at +11 s finds `fresh` idle past maxIdleTime: retired, then a new slot.
        guard case .retire(let retired, let reason) = machine.checkOut(now: t0 + .seconds(11), makeWaiter: { Waiter(0) })
        else {
            Issue.record("an idle connection past maxIdleTime should be retired")
            return
        }
        #expect(retired === fresh && reason == "max idle time")
        guard case .open = machine.checkOut(now: t0 + .seconds(11), makeWaiter: { Waiter(0) }) else {
            Issue.record("then a new one should be opened")
            return
        }
        machine.openSucceeded()
        // Returned past its lifetime, a connection is closed whatever else holds.
        let aged = Connection(3, createdAt: t0 - .seconds(60))
        guard case .close(let closedReason, nil) = machine.checkIn(aged, unusable: nil, now: t0 + .seconds(11)) else {
            Issue.record("a connection past maxLifetime should be closed when it comes back")
            return
        }
        #expect(closedReason == "max lifetime")
        #expect(machine.stats == PoolStats(active: 0, idle: 0, max: 3, opened: 3, closed: 3))
    }

    @Test func closingTellsEveryWaiterAndClosesWhatComesBack() {
        var machine = Machine(limits: limits(maxOpen: 2, maxIdle: 1))
        _ = machine.checkOut(now: t0, makeWaiter: { Waiter(0) })
        _ = machine.checkOut(now: t0, makeWaiter: { Waiter(0) })
        machine.openSucceeded()
        machine.openSucceeded()
        let kept = Connection(1, createdAt: t0)
        let lent = Connection(2, createdAt: t0)
        guard case .keptIdle = machine.checkIn(kept, unusable: nil, now: t0) else {
            Issue.record("a healthy connection should be kept idle")
            return
        }
        // maxIdle is 1: the second healthy return is surplus, closed without a reason to log.
        _ = machine.checkOut(now: t0, makeWaiter: { Waiter(0) })  // takes `kept` again
        #expect(machine.idle.isEmpty)
        _ = machine.checkOut(now: t0, makeWaiter: { Waiter(1) })
        _ = machine.checkOut(now: t0, makeWaiter: { Waiter(2) })
        let closing = machine.close()
        #expect(closing.idle.isEmpty)
        #expect(closing.handoffs.compactMap(describe) == ["w1:closed", "w2:closed"])
        guard case .close(nil, nil) = machine.checkIn(lent, unusable: nil, now: t0) else {
            Issue.record("a connection returned to a closed pool should be closed")
            return
        }
        guard case .closed = machine.checkOut(now: t0, makeWaiter: { Waiter(3) }) else {
            Issue.record("a closed pool should refuse checkouts")
            return
        }
        let reservedAfterClose = machine.reserveWarmUp()
        #expect(reservedAfterClose == nil)
        // A warm-up that finishes after the close hands its connections back as surplus.
        let late = machine.finishWarmUp(reserved: 0, connections: [], now: t0)
        #expect(late.surplus.isEmpty)
    }

    @Test func warmUpServesWaitersFirstAndGivesFailedSlotsAway() {
        var machine = Machine(limits: limits(maxOpen: 3, maxIdle: 2))
        let reserved = machine.reserveWarmUp()
        #expect(reserved == 2)
        // While the warm-up runs, one checkout opens in the last slot and two more must wait.
        guard case .open = machine.checkOut(now: t0, makeWaiter: { Waiter(0) }) else {
            Issue.record("the third slot should be free")
            return
        }
        machine.openSucceeded()
        _ = machine.checkOut(now: t0, makeWaiter: { Waiter(1) })
        _ = machine.checkOut(now: t0, makeWaiter: { Waiter(2) })
        // One warm-up connection opened and one failed: the first waiter gets the connection,
        // the second the failed slot.
        let placed = machine.finishWarmUp(reserved: 2, connections: [Connection(1, createdAt: t0)], now: t0)
        #expect(placed.handoffs.compactMap(describe) == ["w1:c1", "w2:slot"])
        #expect(placed.surplus.isEmpty)
        checkInvariants(machine)
    }

    /// A seeded random walk over every operation, modelling the callers (lent connections,
    /// parked waiters, opens in flight), with the invariants checked after each step and every
    /// waiter accounted for: it times out or gets exactly one grant.
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func randomWalkKeepsTheInvariants(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var machine = Machine(limits: limits(maxOpen: 4, maxIdle: 2, lifetime: .seconds(100), idleTime: .seconds(20)))
        var now = t0
        var nextID = 0
        var lent: [Connection] = []
        var opening = 0
        var parked: [Waiter] = []
        var granted: [ObjectIdentifier: Int] = [:]
        // Kept alive, so no two waiters share an ObjectIdentifier.
        var everyWaiter: [Waiter] = []
        var timedOut = 0
        func newConnection() -> Connection {
            nextID += 1
            return Connection(nextID, createdAt: now)
        }
        func receive(_ handoffs: [Machine.Handoff]) {
            for handoff in handoffs {
                granted[ObjectIdentifier(handoff.waiter), default: 0] += 1
                parked.removeAll { $0 === handoff.waiter }
                switch handoff.grant {
                case .connection(let connection): lent.append(connection)
                case .openSlot: opening += 1
                case .poolClosed: break
                }
            }
        }
        for step in 0..<2_000 {
            now += .seconds(Int.random(in: 0...3, using: &random))
            switch Int.random(in: 0..<10, using: &random) {
            case 0...2:
                switch machine.checkOut(now: now, makeWaiter: { Waiter(step) }) {
                case .reuse(let connection): lent.append(connection)
                case .retire: break
                case .open: opening += 1
                case .wait(let waiter):
                    parked.append(waiter)
                    everyWaiter.append(waiter)
                case .closed: break
                }
            case 3 where opening > 0:
                opening -= 1
                if Bool.random(using: &random) {
                    machine.openSucceeded()
                    lent.append(newConnection())
                } else {
                    receive(machine.openFailed().map { [$0] } ?? [])
                }
            case 4...6 where !lent.isEmpty:
                let connection = lent.remove(at: Int.random(in: 0..<lent.count, using: &random))
                let unusable = Int.random(in: 0..<5, using: &random) == 0 ? "unhealthy" : nil
                switch machine.checkIn(connection, unusable: unusable, now: now) {
                case .handedOver(let handoff): receive([handoff])
                case .keptIdle: break
                case .close(_, let slot): receive(slot.map { [$0] } ?? [])
                }
            case 7 where !lent.isEmpty:
                // Found closed by the server right after checkout: replaced in its slot.
                lent.removeLast()
                machine.replaceLent()
                opening += 1
            case 8 where !parked.isEmpty:
                let waiter = parked.removeFirst()
                if machine.waiterTimedOut(waiter) { timedOut += 1 } else { Issue.record("a parked waiter was not queued") }
            case 9:
                receive(machine.reap(now: now).handoffs)
            default:
                break
            }
            checkInvariants(machine)
            #expect(machine.lent == lent.count && machine.opening == opening)
            #expect(machine.waiters.map(ObjectIdentifier.init) == parked.map(ObjectIdentifier.init))
        }
        receive(machine.close().handoffs)
        #expect(parked.isEmpty)
        #expect(granted.values.allSatisfy { $0 == 1 }, "a waiter got more than one grant")
        #expect(machine.waitCount == everyWaiter.count)
        #expect(everyWaiter.count == granted.count + timedOut, "a waiter left the queue without a grant")
    }
}
