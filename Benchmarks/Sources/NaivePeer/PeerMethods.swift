import EventRules
import NIOCore
import UnaryGRPC

/// The two event methods, answered the naive way: decide, write every row, answer. OK only once
/// every row is written; INVALID_ARGUMENT naming the field for a bad event; UNAVAILABLE with the
/// database's message when a write failed (the caller delivers again later). Served by the same
/// gRPC server as the service, so the benchmarks' ratio measures the buffer and nothing else.
enum PeerMethods {
    static func methods(rules: PeerRules, pool: WriterPool) -> [GRPCMethod] {
        [
            ("accelbyte.iam.account.v1.UserAuthenticationUserLoggedInService", IncomingEvent.MessageKind.login),
            ("accelbyte.social.statistic.v1.StatisticStatItemUpdatedService", .stat),
        ].map { service, kind in
            GRPCMethod(service: service, name: "OnMessage", handler: .unary { call in
                let event: IncomingEvent
                do {
                    event = try IncomingEvent(serialized: Array(call.request.readableBytesView), as: kind)
                } catch {
                    return call.fail(GRPCStatus(.invalidArgument, "the request is not a valid \(kind.messageName): \(error)"))
                }
                switch rules.decide(event) {
                case .ignore:
                    call.respond(ByteBuffer())
                case .reject(let field, let reason):
                    call.fail(GRPCStatus(.invalidArgument, "\(field): \(reason)"))
                case .write(let userID, let changes):
                    pool.write(userID: userID, changes: changes) { error in
                        if let error {
                            call.fail(GRPCStatus(.unavailable, "\(error)"))
                        } else {
                            call.respond(ByteBuffer())
                        }
                    }
                }
            })
        }
    }
}
