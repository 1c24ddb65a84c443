import Foundation
import GRPCCore
import GameEvents
import Synchronization

/// Where the service is in its life, and so what health reports: gRPC `grpc.health.v1.Health`
/// (SERVING only when ready) and HTTP `/readyz`. Watchers are told of every status change.
final class HealthState: Sendable {
    enum Status: Sendable { case serving, notServing }

    enum Phase: String, Sendable {
        /// Loading, migrating, warming the pool: not ready yet.
        case starting
        /// Migrations checked, pool warm, gRPC listening.
        case ready
        /// Stopped taking events, flushing for shutdown.
        case draining
    }

    private struct State {
        var phase: Phase = .starting
        var watchers: [UUID: AsyncStream<Status>.Continuation] = [:]

        var status: Status { phase == .ready ? .serving : .notServing }
    }

    private let state = Mutex(State())

    var status: Status { state.withLock { $0.status } }
    var phase: Phase { state.withLock { $0.phase } }

    func set(_ phase: Phase) {
        let (status, watchers) = state.withLock { state -> (Status, [AsyncStream<Status>.Continuation]) in
            let before = state.status
            state.phase = phase
            return (state.status, before == state.status ? [] : Array(state.watchers.values))
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
