/// The gRPC side of settling an event: the receipt a call answered from its commit waits on.
///
/// With `receipts` (durable acknowledgement, and every deletion), an event in the buffer, or a
/// repeat of one, gets the receipt of the first drain certain to hold it. The place the call
/// took under `ACK_WAITING_LIMIT` goes with the receipt and is given back when its wait ends,
/// or here at once when there is nothing to wait for.
struct ReceiptSettlement: IngestSettlement, Sendable {
    /// Where receipts come from; nil when the call is answered at once (`ACK_MODE=buffered`).
    let receipts: Flusher?
    let userID: String
    let place: CommitWaitLimit?

    func settle(_ outcome: IngestOutcome, shard: Int?) -> CommitReceipt? {
        var receipt: CommitReceipt? = nil
        if let receipts, outcome == .accepted || outcome == .ignored(.duplicate) {
            receipt = shard.map { receipts.receipt(shard: $0) } ?? receipts.receipt(userID: userID)
        }
        guard let place else { return receipt }
        guard let held = receipt else {
            place.giveBack()
            return nil
        }
        return held.holding(place)
    }
}
