/// The id of an event merged into the buffer, and the user it was for: a flush records the ids
/// it committed (deduplication), and a row it had to set aside (a poison row) names the events of
/// its user that it carried.
public struct BufferedEventID: Sendable, Equatable {
    public var id: String
    public var userID: String

    public init(id: String, userID: String) {
        self.id = id
        self.userID = userID
    }
}
