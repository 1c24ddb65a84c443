/// The deduplication protocol's decisions, apart from how they are carried out: pure functions
/// of what Redis answered (decoded by `RedisDedupStore`), of the flush's commit record and of
/// `DEDUP_FAIL_MODE`. `EventDeduplicator` applies them (memory, counters, Redis round trips);
/// `DedupPolicyTests` checks every one without a server.
enum DedupPolicy {
    /// What a claim (`SET key "p…" NX PX lease GET`) found under the id's key.
    enum ClaimReply: Sendable, Equatable {
        /// Nothing: the claim is ours.
        case free
        /// `c`: a delivery of it committed within `DEDUP_TTL`.
        case committed
        /// `k…`: its holder marked it as committing in a flush just before that flush's COMMIT.
        case committing(CommittingMark)
        /// `p…`: another delivery holds it and has not committed.
        case claimed(Holder)
        /// No answer, or an error reply: Redis cannot vouch either way.
        case unanswered
    }

    /// A claim's value `k`, tab, instance, tab, flush id: the holder marked the id as committing
    /// in that flush just before its COMMIT.
    struct CommittingMark: Sendable, Equatable {
        var value: String
        var instance: String
        var flush: Int64
    }

    /// Who holds a claim, as its value says.
    struct Holder: Sendable, Equatable {
        var instance: String
        var kafka: KafkaCoordinate?
    }

    /// Where a Kafka record's event came from: a claim made for it names it, so the partition's
    /// next owner can tell whether its holder committed it (see `KafkaIngest`).
    struct KafkaCoordinate: Sendable, Equatable {
        var topic: String
        var partition: Int32
        var offset: Int64
    }

    /// What to do after a claim.
    enum AfterClaim: Sendable, Equatable {
        /// Ours: the event may go into the buffer.
        case admit
        /// Someone else's answer settles it (a duplicate, or deliver again later): the id is not
        /// held here.
        case settled(EventDeduplicator.Admission)
        /// A mark: its flush key says whether that flush committed (one more round trip).
        case askFlushKey(CommittingMark)
        /// Redis could not answer: `DEDUP_FAIL_MODE` decides (`fallback`).
        case fallBack
    }

    static func afterClaim(_ reply: ClaimReply) -> AfterClaim {
        switch reply {
        case .free: .admit
        case .committed: .settled(.duplicate(.redis))
        case .committing(let mark): .askFlushKey(mark)
        case .claimed(let holder): .settled(.heldElsewhere(holder))
        case .unanswered: .fallBack
        }
    }

    /// Redis unreachable: `open` admits on the in-memory check alone (unclaimed), `closed`
    /// pushes the event back until Redis answers.
    static func fallback(_ mode: EventDeduplicator.FailMode) -> EventDeduplicator.Admission {
        switch mode {
        case .open: .admitted(claimed: false)
        case .closed: .unavailable
        }
    }

    /// What a mark whose flush key is absent comes to, asked in this order: did its flush commit
    /// (the commit record in PostgreSQL; nil: the database could not say), and, if not, is its
    /// holder alive (`eh:live:…`; nil: Redis could not say).
    enum MarkResolution: Sendable, Equatable {
        /// Its flush committed: the event was applied; the mark may become `c`.
        case duplicate
        /// Its holder may still commit it, or nobody can tell now: deliver again later.
        case later
        /// Its holder is gone and its flush never committed: nobody ever will; the id may be
        /// taken over (compare-and-set on the mark, so one replica wins).
        case takeOver
    }

    static func resolveMark(flushCommitted: Bool?, holderAlive: Bool?, holderIsThisProcess: Bool) -> MarkResolution {
        guard let flushCommitted else { return .later }
        if flushCommitted { return .duplicate }
        // Our own flush that failed, or is still committing: its entries are still buffered and
        // its retry will commit them.
        if holderIsThisProcess { return .later }
        guard holderAlive == false else { return .later }
        return .takeOver
    }

    /// A Kafka record's claim found held elsewhere. A claim made for a record of this same
    /// partition was made by the partition's previous owner (or this process before a restart):
    /// if that record's position is committed for the user's shard, the event was applied (a
    /// duplicate); otherwise it never will be (its holder is fenced by the partition's new
    /// owner, or dead), and the claim may be taken over. A claim held anywhere else stands: the
    /// record is offered again later.
    enum KafkaClaimResolution: Sendable, Equatable {
        case stands
        case duplicate
        case takeOver
    }

    static func resolveKafkaClaim(
        heldBy holder: Holder, record: KafkaCoordinate, isCommitted: (_ offset: Int64) -> Bool
    ) -> KafkaClaimResolution {
        guard let claimed = holder.kafka, claimed.topic == record.topic, claimed.partition == record.partition else {
            return .stands
        }
        return isCommitted(claimed.offset) ? .duplicate : .takeOver
    }
}
