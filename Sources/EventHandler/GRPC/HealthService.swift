import Foundation
import GRPCCore
import GameEvents
import Synchronization

/// The serving state `grpc.health.v1.Health` reports: SERVING once the service is ready,
/// NOT_SERVING while it drains. Watchers are told of every change.
final class HealthState: Sendable {
    enum Status: Sendable { case serving, notServing }

    private struct State {
        var status: Status = .notServing
        var watchers: [UUID: AsyncStream<Status>.Continuation] = [:]
    }

    private let state = Mutex(State())

    var status: Status { state.withLock { $0.status } }

    func set(_ status: Status) {
        let watchers = state.withLock { state -> [AsyncStream<Status>.Continuation] in
            guard state.status != status else { return [] }
            state.status = status
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.yield(status) }
    }

    /// The current status, then every change, until the consumer stops.
    func updates() -> AsyncStream<Status> {
        let (stream, continuation) = AsyncStream<Status>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        state.withLock { state in
            state.watchers[id] = continuation
            continuation.yield(state.status)
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }

    func finishAll() {
        let watchers = state.withLock { state in
            defer { state.watchers.removeAll() }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.finish() }
    }
}

/// `grpc.health.v1.Health`: the overall service ("") and each event service by its full name.
struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    static let knownServices: Set<String> = [
        "",
        "accelbyte.iam.account.v1.UserAuthenticationUserLoggedInService",
        "accelbyte.social.statistic.v1.StatisticStatItemUpdatedService",
    ]

    let state: HealthState

    func check(
        request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext
    ) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard Self.knownServices.contains(request.service) else {
            throw RPCError(code: .notFound, message: "unknown service \"\(request.service)\"")
        }
        return Self.response(state.status)
    }

    func watch(
        request: Grpc_Health_V1_HealthCheckRequest,
        response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        guard Self.knownServices.contains(request.service) else {
            try await response.write(.with { $0.status = .serviceUnknown })
            return
        }
        for await status in state.updates() {
            try await response.write(Self.response(status))
        }
    }

    private static func response(_ status: HealthState.Status) -> Grpc_Health_V1_HealthCheckResponse {
        .with { $0.status = status == .serving ? .serving : .notServing }
    }
}
