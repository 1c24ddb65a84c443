import EventRules
import NIOCore
import UnaryGRPC

/// The platform's GDPR data-deletion method (wire.md, "GDPR data deletion"), as the incumbent's
/// M6 handles it: every row of the user in the namespace deleted, and OK only once that delete
/// has committed, whatever `ACK_MODE` is. The call waits for the flush that carries the
/// deletion (it runs at once, not at the interval); while the database is away it keeps
/// waiting until its deadline (DEADLINE_EXCEEDED) or the service stops (UNAVAILABLE): never OK
/// before the commit. Another namespace is OK and ignored; no user is INVALID_ARGUMENT.
enum UserDeletionMethod {
    static let service = "accelbyte.iam.account.v1.DeletionAccountGdprGdprRequestDataDeletionResponseService"

    static func method(ingestor: EventIngestor) -> GRPCMethod {
        GRPCMethod(service: service, name: "OnMessage", recordsRequestDuration: true, handler: .unary { call in
            let request: UserDeletionRequest
            do {
                request = try UserDeletionRequest(serialized: Array(call.request.readableBytesView))
            } catch {
                return call.fail(GRPCStatus(.invalidArgument, "the request is not a valid \(UserDeletionRequest.messageName): \(error)"))
            }
            let (outcome, receipt) = ingestor.deleteUser(request)
            guard let receipt else { return EventMethods.answer(call, outcome) }
            let wait = receipt.whenCommitted { committed in
                if committed {
                    call.respond(EventMethods.emptyResponse)
                } else {
                    call.fail(GRPCStatus(.unavailable, "the service stopped before this deletion was committed; retry"))
                }
            }
            call.onCancel { wait.cancel() }
        })
    }
}
