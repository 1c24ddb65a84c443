import Foundation
import GameEvents
import NIOCore
import UnaryGRPC
import Synchronization

/// Where the service is in its life, and so what health reports: gRPC `grpc.health.v1.Health`
/// (SERVING only when ready) and HTTP `/readyz`. Watchers are told of every status change.
final class HealthState: Sendable {
    enum Status: Sendable { case serving, notServing }

    enum Phase: String, Sendable {
        /// Loading, migrating, warming the pool: not ready yet.
        case starting
        /// `MIGRATE_PROGRESS_TABLE=false` and the REST service has not created the progress
        /// table (with every column the writer uses) yet.
        case waitingForTable = "waiting for table user_goal_progress (MIGRATE_PROGRESS_TABLE=false: the REST service creates it)"
        /// Migrations checked, pool warm, gRPC listening.
        case ready
        /// Stopped taking events, flushing for shutdown.
        case draining
    }

    private struct State {
        var phase: Phase = .starting
        var watchers: [UUID: Watcher] = [:]

        var status: Status { phase == .ready ? .serving : .notServing }
    }

    private struct Watcher {
        let onChange: @Sendable (Status) -> Void
        let onFinish: @Sendable () -> Void
    }

    private let state = Mutex(State())

    var status: Status { state.withLock { $0.status } }
    var phase: Phase { state.withLock { $0.phase } }

    func set(_ phase: Phase) {
        let (status, watchers) = state.withLock { state -> (Status, [Watcher]) in
            let before = state.status
            state.phase = phase
            return (state.status, before == state.status ? [] : Array(state.watchers.values))
        }
        for watcher in watchers { watcher.onChange(status) }
    }

    /// Calls `onChange` with the current status, then with every change, until `unwatch`;
    /// `onFinish` when the service stops (`finishAll`). Returns the watch's token.
    func watch(onChange: @escaping @Sendable (Status) -> Void, onFinish: @escaping @Sendable () -> Void) -> UUID {
        let id = UUID()
        let status = state.withLock { state in
            state.watchers[id] = Watcher(onChange: onChange, onFinish: onFinish)
            return state.status
        }
        onChange(status)
        return id
    }

    func unwatch(_ id: UUID) {
        _ = state.withLock { $0.watchers.removeValue(forKey: id) }
    }

    func finishAll() {
        let watchers = state.withLock { state in
            defer { state.watchers.removeAll() }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.onFinish() }
    }
}

/// `grpc.health.v1.Health` (Check and Watch) for the overall service ("") and each event
/// service by its full name, as gRPC server methods.
enum HealthMethods {
    static let service = "grpc.health.v1.Health"
    static let knownServices: Set<String> = ["", EventMethods.loginService, EventMethods.statService]

    static func methods(state: HealthState) -> [GRPCMethod] {
        [
            GRPCMethod(service: service, name: "Check", requiresToken: false, handler: .unary { call in
                guard let request = try? Grpc_Health_V1_HealthCheckRequest(serializedBytes: Array(call.request.readableBytesView)) else {
                    return call.fail(GRPCStatus(.invalidArgument, "the request is not a valid grpc.health.v1.HealthCheckRequest"))
                }
                guard knownServices.contains(request.service) else {
                    return call.fail(GRPCStatus(.notFound, "unknown service \"\(request.service)\""))
                }
                call.respond(response(state.status))
            }),
            GRPCMethod(service: service, name: "Watch", requiresToken: false, handler: .serverStreaming { stream in
                guard let request = try? Grpc_Health_V1_HealthCheckRequest(serializedBytes: Array(stream.request.readableBytesView)) else {
                    return stream.finish(GRPCStatus(.invalidArgument, "the request is not a valid grpc.health.v1.HealthCheckRequest"))
                }
                guard knownServices.contains(request.service) else {
                    stream.send(serialized(.with { $0.status = .serviceUnknown }))
                    return
                }
                let watcher = state.watch(
                    onChange: { status in stream.send(response(status)) },
                    onFinish: { stream.finish(GRPCStatus(.unavailable, "the service is stopping")) })
                stream.onCancel { state.unwatch(watcher) }
            }),
        ]
    }

    private static func response(_ status: HealthState.Status) -> ByteBuffer {
        serialized(.with { $0.status = status == .serving ? .serving : .notServing })
    }

    private static func serialized(_ message: Grpc_Health_V1_HealthCheckResponse) -> ByteBuffer {
        ByteBuffer(bytes: (try? message.serializedBytes() as [UInt8]) ?? [])
    }
}
