import Buffer
import Testing

@Suite("BoundedCount")
struct BoundedCountTests {
    @Test("takes up to the limit exactly, several places at once or none; a give-back makes room")
    func limit() {
        let count = BoundedCount(limit: 5)
        #expect(Bool(count.take(3)))
        #expect(!Bool(count.take(3)))
        #expect(Bool(count.take(2)))
        #expect(!Bool(count.take()))
        #expect(Bool(count.take(0)))
        #expect(Int(count.count) == 5)
        count.giveBack(2)
        #expect(Bool(count.take()))
        #expect(Int(count.count) == 4)
    }

    @Test("a forced take may pass the limit; takes fail until the count is back under it")
    func forced() {
        let count = BoundedCount(limit: 3)
        #expect(Bool(count.take(2)))
        count.force(4)
        #expect(Int(count.count) == 6)
        #expect(!Bool(count.take()))
        count.giveBack(4)
        #expect(Bool(count.take()))
        #expect(!Bool(count.take()))
    }

    @Test("four threads racing for 1,000 places take exactly 1,000; the largest limit never overflows")
    func concurrent() async {
        let shared = Shared()
        let taken = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask { (0..<2_000).reduce(0) { sum, _ in sum + (shared.count.take() ? 1 : 0) } }
            }
            return await group.reduce(0, +)
        }
        #expect(taken == 1_000)
        #expect(Int(shared.count.count) == 1_000)
        let unbounded = BoundedCount(limit: .max)
        #expect(Bool(unbounded.take(.max)))
        #expect(!Bool(unbounded.take()))
    }

    private final class Shared: Sendable {
        let count = BoundedCount(limit: 1_000)
    }
}
