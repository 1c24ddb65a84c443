/// What completing a goal grants; the handler only carries it, the REST side pays it out.
public struct Reward: Sendable, Equatable {
    /// `ITEM` or `WALLET`.
    public let type: String
    /// The item or currency code; 1…100 UTF-8 bytes.
    public let rewardId: String
    /// 1…2^31−1.
    public let quantity: Int

    public init(type: String, rewardId: String, quantity: Int) {
        self.type = type
        self.rewardId = rewardId
        self.quantity = quantity
    }
}
