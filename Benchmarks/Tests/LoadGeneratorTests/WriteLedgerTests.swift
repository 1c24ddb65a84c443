import TestSupport
import LoadGenerator
import Testing

@Suite("WriteLedger: the proof of writes")
struct WriteLedgerTests {
    @Test("the stat value sum takes the last value answered OK per (user, code)")
    func lastValueOK() {
        var ledger = WriteLedger(users: 3)
        func stat(_ user: Int, _ code: Int, _ value: Int) -> PlannedEvent { PlannedEvent(sequence: 0, user: user, kind: .stat(code: code, value: value)) }
        ledger.answeredOK(stat(0, 1, 1))
        ledger.answeredOK(stat(0, 1, 2))
        // (0, 1) value 3 failed: nothing recorded. (1, 0) value 1 failed, 2 answered OK.
        ledger.answeredOK(stat(1, 0, 2))
        ledger.answeredOK(stat(2, 4, 1))
        ledger.answeredOK(PlannedEvent(sequence: 0, user: 2, kind: .login))
        ledger.answeredOK(PlannedEvent(sequence: 0, user: 0, kind: .login))
        #expect(ledger.loginsOK == 2)
        #expect(ledger.statsOK == 4)
        #expect(ledger.statValueSumOK == 2 + 2 + 1)
        #expect(ledger.lastValueOK(user: 0, code: 1) == 2)
        #expect(ledger.lastValueOK(user: 1, code: 1) == 0)
    }

    @Test("a simulated run with 10% failures: the ledger matches a recount of what the rows hold")
    func simulatedRun() {
        var mix = EventMix(users: 200, random: SeededGenerator(seed: 11))
        var ledger = WriteLedger(users: 200)
        var random = SeededGenerator(seed: 12)
        // What the service would hold: per (user, code) the last value it accepted; per user the logins.
        var rows: [Int: Int] = [:]
        var logins = 0
        var outstanding: [PlannedEvent] = []
        for _ in 0..<30_000 {
            outstanding.append(mix.next()!)
            if outstanding.count > 50 || Bool.random(using: &random) {
                let answered = outstanding.remove(at: Int.random(in: 0..<outstanding.count, using: &random))
                mix.finish(answered)
                guard Int.random(in: 0..<10, using: &random) > 0 else { continue }  // failed: not written
                ledger.answeredOK(answered)
                switch answered.kind {
                case .login: logins += 1
                case .stat(let code, let value): rows[answered.user * 5 + code] = value
                }
            }
        }
        #expect(ledger.loginsOK == logins)
        #expect(ledger.statValueSumOK == rows.values.reduce(0, +))
        #expect(ledger.statValueSumOK > 0)
    }
}
