import GRPCCore
import GameEvents
import SwiftProtobuf

/// What both methods do with an event: decide, write every row, answer. OK only once every
/// row is written; INVALID_ARGUMENT naming the field for a bad event; UNAVAILABLE with the
/// database's message when a write failed (the caller delivers again later).
struct PeerCallHandler: Sendable {
    let pool: WriterPool

    func handle(_ decision: EventDecision) async throws {
        switch decision {
        case .ignore:
            return
        case .reject(let field, let reason):
            throw RPCError(code: .invalidArgument, message: "\(field): \(reason)")
        case .write(let userID, let changes):
            do {
                try await pool.write(userID: userID, changes: changes)
            } catch {
                throw RPCError(code: .unavailable, message: "\(error)")
            }
        }
    }
}

/// `UserAuthenticationUserLoggedInService/OnMessage`, answered the naive way.
struct PeerLoginService: Accelbyte_Iam_Account_V1_UserAuthenticationUserLoggedInService.SimpleServiceProtocol {
    let rules: PeerRules
    let handler: PeerCallHandler

    func onMessage(
        request: Accelbyte_Iam_Account_V1_UserLoggedIn, context: ServerContext
    ) async throws -> Google_Protobuf_Empty {
        try await handler.handle(rules.decide(request))
        return Google_Protobuf_Empty()
    }
}

/// `StatisticStatItemUpdatedService/OnMessage`, answered the naive way.
struct PeerStatService: Accelbyte_Social_Statistic_V1_StatisticStatItemUpdatedService.SimpleServiceProtocol {
    let rules: PeerRules
    let handler: PeerCallHandler

    func onMessage(
        request: Accelbyte_Social_Statistic_V1_StatItemUpdated, context: ServerContext
    ) async throws -> Google_Protobuf_Empty {
        try await handler.handle(rules.decide(request))
        return Google_Protobuf_Empty()
    }
}
