/// Told of a flush's event ids around its commit. Deduplication is the one participant: it
/// marks the ids as committing in the flush before the COMMIT (so whatever happens next, a
/// repeat can learn whether they were applied), and records them as applied after it.
///
/// Threading: both are called on the flush worker's own thread and may block (Redis).
protocol CommitParticipant: Sendable {
    /// Just before the COMMIT of flush `flush`; answers whether every mark was written.
    func markCommitting(_ ids: [String], flush: Int64) -> Bool
    /// Flush `flush` committed; `marked` is what `markCommitting` answered for it.
    func committed(_ ids: [String], flush: Int64, marked: Bool)
}

extension EventDeduplicator: CommitParticipant {}
