import Storage

/// Something whose state commits with a flush's rows: Kafka checkpoints (and the dead letters
/// below them), deduplication's marks. The flush worker knows none of them by name. Each takes
/// its part of a flush under the worker's drain lock, writes it in the flush's transaction or
/// just before its COMMIT, and hears of the commit.
///
/// Threading: every call is on the flush worker's own thread, and may block.
protocol CommitParticipant: Sendable {
    /// Called under worker `worker`'s drain lock, right after its shards were drained into
    /// `drained` for flush `flushID` (what it snapshots then matches the drain exactly): this
    /// participant's part of that flush, or nil when it has nothing to commit with it.
    func part(of flushID: Int64, worker: Int, drained: FlushTransaction.Drained) -> (any CommitPart)?
}

/// One participant's part of one flush. A flush that fails before its COMMIT drops its parts
/// unheard: the next drain takes new ones.
protocol CommitPart: Sendable {
    /// True when this part must be committed even if nothing else was drained (a checkpoint
    /// that moved past records that changed no row).
    var mustCommit: Bool { get }
    /// Before the transaction opens (it may wait: the dead letters below a checkpoint are
    /// delivered first). An error fails the flush before anything is written.
    func prepare() throws
    /// Inside the transaction, after the rows. An error rolls the flush back.
    func write(on connection: PostgresConnection) throws
    /// Everything is written; the COMMIT is next.
    func beforeCommit()
    /// The flush committed (after the calls waiting for it were answered).
    func committed()
    /// The flush failed and nothing of it was committed (its entries are back in the buffer,
    /// and the next drain takes new parts). `error` says why.
    func failed(_ error: any Error)
}

extension CommitPart {
    var mustCommit: Bool { false }
    func prepare() throws {}
    func write(on connection: PostgresConnection) throws {}
    func beforeCommit() {}
    func failed(_ error: any Error) {}
}
