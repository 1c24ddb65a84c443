import Catalog
import GameEvents
import SwiftProtobuf

/// The platform's GDPR data-deletion event (wire.md, "GDPR data deletion") as the service acts
/// on it: whose rows to delete, in which namespace.
public struct UserDeletionRequest: Sendable, Equatable {
    /// `payload.deletion_gdpr.user_id`, else the top-level `user_id`.
    public var userID: String
    /// `payload.deletion_gdpr.namespace`, else the top-level `namespace`.
    public var namespace: String
    /// The event's `id` (for the audit line; deletions are not deduplicated: one is idempotent).
    public var id: String

    public init(userID: String, namespace: String, id: String = "") {
        self.userID = userID
        self.namespace = namespace
        self.id = id
    }

    public init(_ message: Accelbyte_Iam_Account_V1_GdprRequestDataDeletionResponse) {
        let deletion = message.payload.deletionGdpr
        self.init(
            userID: deletion.userID.isEmpty ? message.userID : deletion.userID,
            namespace: deletion.namespace.isEmpty ? message.namespace : deletion.namespace,
            id: message.id)
    }

    /// Decodes a serialized `GdprRequestDataDeletionResponse`; throws SwiftProtobuf's error for
    /// bytes that are not one.
    public init(serialized bytes: [UInt8]) throws {
        self.init(try Accelbyte_Iam_Account_V1_GdprRequestDataDeletionResponse(serializedBytes: bytes))
    }

    public static let messageName = Accelbyte_Iam_Account_V1_GdprRequestDataDeletionResponse.protoMessageName

    /// Another namespace is acknowledged and ignored, as for events; no user (neither field) or
    /// one that no row can have is bad input.
    public func check(namespace expected: String) -> EventValidator.Verdict {
        if namespace != expected { return .otherNamespace }
        if userID.isEmpty {
            return .invalid(field: .userID, reason: "must not be empty (neither payload.deletion_gdpr.user_id nor user_id is set)")
        }
        if userID.utf8.count > EventValidator.maxUserIDBytes {
            return .invalid(field: .userID, reason: "must be at most \(EventValidator.maxUserIDBytes) bytes, got \(userID.utf8.count)")
        }
        if let refusal = ControlCharacters.refusal(in: userID) { return .invalid(field: .userID, reason: refusal) }
        return .valid
    }
}
