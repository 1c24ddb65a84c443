import Foundation
import GRPCCore
import GameEvents
import ServiceTestSupport
import TestSupport
import Testing

/// The operations endpoints of the running service, read over real HTTP while real gRPC
/// traffic flows: what `/metrics` says must be what happened.
@Suite("Operations endpoints", .serialized)
struct OperationsTests {
    static let loginMethod = "accelbyte.iam.account.v1.UserAuthenticationUserLoggedInService/OnMessage"
    static let statMethod = "accelbyte.social.statistic.v1.StatisticStatItemUpdatedService/OnMessage"

    /// Every metric family the service exports, with its Prometheus type. The alert rules and
    /// the dashboard may only read these (scripts/check-monitoring.sh checks their side against
    /// deploy/prometheus/metrics.txt, and the test below checks that file against this list).
    static let families: [String: String] = [
        "event_buffer_size": "gauge", "event_buffer_limit": "gauge",
        "db_connections_active": "gauge", "db_connections_idle": "gauge", "db_connections_max": "gauge",
        "flush_consecutive_failures": "gauge", "service_ready": "gauge",
        "events_received_total": "counter", "events_processed_total": "counter",
        "events_ignored_total": "counter", "events_rejected_total": "counter",
        "events_unassigned_total": "counter", "buffer_backpressure_activations_total": "counter",
        "flushes_total": "counter", "flush_failures_total": "counter", "flush_batches_total": "counter",
        "flush_dead_lettered_entries_total": "counter",
        "gdpr_deletions_total": "counter", "gdpr_rows_deleted_total": "counter", "commit_waiters": "gauge",
        "rows_written_total": "counter",
        "db_pool_waits_total": "counter", "db_pool_wait_seconds_total": "counter",
        "db_connections_opened_total": "counter", "db_connections_closed_total": "counter", "db_statement_cancels_total": "counter",
        "grpc_request_duration_seconds": "histogram", "event_commit_latency_seconds": "histogram",
        "flush_duration_seconds": "histogram", "flush_rows": "histogram",
        "dedup_ids_held": "gauge", "dedup_duplicates_total": "counter", "dedup_admitted_without_redis_total": "counter",
        // The gRPC server's, under go-grpc-prometheus's names (the incumbent's dashboards).
        "grpc_server_started_total": "counter", "grpc_server_handled_total": "counter",
        "grpc_server_msg_received_total": "counter", "grpc_server_msg_sent_total": "counter",
        "grpc_server_handling_seconds": "histogram", "grpc_server_connections": "gauge",
        "grpc_server_connections_accepted_total": "counter", "grpc_server_connections_refused_total": "counter",
        "grpc_server_connection_errors_total": "counter", "grpc_server_stream_errors_total": "counter", "grpc_server_accept_errors_total": "counter", "grpc_server_unknown_method_total": "counter",
        "grpc_server_oversized_messages_total": "counter",
        "grpc_server_unauthenticated_total": "counter",
        "grpc_server_tls_handshake_failures_total": "counter",
        "grpc_server_security_reloads_total": "counter",
        // The operations server's own (OperationsHardeningTests).
        "operations_http_connections_refused_total": "counter", "operations_http_connections_timed_out_total": "counter",
        "process_cpu_seconds_total": "counter", "process_resident_memory_bytes": "gauge",
        "process_virtual_memory_bytes": "gauge", "process_open_fds": "gauge", "process_max_fds": "gauge",
        "process_start_time_seconds": "gauge",
    ]

    static func login(_ user: String, id: String, namespace: String = "test-ns") -> Accelbyte_Iam_Account_V1_UserLoggedIn {
        .with {
            $0.id = id
            $0.namespace = namespace
            $0.userID = user
        }
    }

    static func stat(
        _ user: String, id: String, code: String = "stat-0", value: Double = 5, namespace: String = "test-ns",
        payload: Bool = true
    ) -> Accelbyte_Social_Statistic_V1_StatItemUpdated {
        .with {
            $0.id = id
            $0.namespace = namespace
            $0.userID = user
            if payload {
                $0.payload.statCode = code
                $0.payload.latestValue = value
                $0.payload.inc = 1
            }
        }
    }

    @Test(
        "/metrics before, during and after a flush: buffer gauge up and back to zero, warm pool, counters equal what was sent",
        .timeLimit(.minutes(5)))
    func metricsFollowTraffic() async throws {
        let catalog = TestCatalog()
        // A login moves 20 goals (10 default-assigned), a stat-0 event 20 (all default-assigned).
        // The interval is an hour, so only the size trigger (200 entries) flushes.
        let harness = try ServiceHarness(
            server: .shared, catalogJSON: catalog.json,
            environment: [
                "BUFFER_FLUSH_INTERVAL": "1h", "BUFFER_SIZE_LIMIT": "200", "FLUSH_WORKERS": "2",
                "DB_MAX_OPEN_CONNS": "4", "DB_MAX_IDLE_CONNS": "2",
                // Debug logs one line per flush; the password (ignored by the test server's trust
                // authentication) must never appear.
                "LOG_LEVEL": "debug", "DB_PASSWORD": "pw-never-logged-7f3a",
            ])
        let http = harness.http

        // Before: nothing buffered, the pool warm, every event counter at zero.
        let before = try await http.metrics()
        for (family, type) in Self.families {
            #expect(before.types[family] == type, "\(family) exported as \(type)")
        }
        #expect(before.value("event_buffer_size") == 0)
        #expect(before.value("event_buffer_limit") == 200)
        #expect(before.value("db_connections_idle") == 2)
        #expect(before.value("db_connections_active") == 0)
        #expect(before.value("db_connections_max") == 4)
        #expect(before.value("db_connections_opened_total") == 2)
        #expect(before.value("service_ready") == 1)
        #expect(before.sum("events_received_total") == 0)
        #expect(before.sum("rows_written_total") == 0)

        // During: 160 entries buffered, none written.
        try await harness.withClients { login, stat in
            for u in 0..<4 { _ = try await login.onMessage(Self.login("user-\(u)", id: "l\(u)")) }
            for n in 0..<2 { _ = try await login.onMessage(Self.login("user-0", id: "again\(n)")) }  // merges
            for u in 10..<14 { _ = try await stat.onMessage(Self.stat("user-\(u)", id: "s\(u)")) }
            _ = try await login.onMessage(Self.login("other", id: "o1", namespace: "someone-else"))
            _ = try await stat.onMessage(Self.stat("other", id: "o2", namespace: "someone-else"))
            _ = try await stat.onMessage(Self.stat("user-0", id: "nomatch", code: "no-goal-listens"))
            await #expect(throws: RPCError.self) { _ = try await login.onMessage(Self.login("", id: "bad1")) }
            await #expect(throws: RPCError.self) { _ = try await stat.onMessage(Self.stat("user-9", id: "bad2", payload: false)) }
            await #expect(throws: RPCError.self) {
                _ = try await stat.onMessage(Self.stat("user-9", id: "bad3", value: .nan))
            }
        }
        let during = try await http.metrics()
        #expect(during.value("event_buffer_size") == 160)
        #expect(during.sum("rows_written_total") == 0)
        #expect(during.value("flushes_total") == 0)
        let grpcLogin = ["source": "grpc", "type": "login"], grpcStat = ["source": "grpc", "type": "stat"]
        #expect(during.value("events_received_total", grpcLogin) == 8)
        #expect(during.value("events_received_total", grpcStat) == 8)
        #expect(during.value("events_processed_total", grpcLogin) == 6)
        #expect(during.value("events_processed_total", grpcStat) == 4)
        #expect(during.value("events_ignored_total", grpcLogin.merging(["reason": "other_namespace"]) { $1 }) == 1)
        #expect(during.value("events_ignored_total", grpcStat.merging(["reason": "other_namespace"]) { $1 }) == 1)
        #expect(during.value("events_ignored_total", grpcStat.merging(["reason": "no_matching_goal"]) { $1 }) == 1)
        #expect(during.value("events_rejected_total", grpcLogin.merging(["reason": "invalid_user_id"]) { $1 }) == 1)
        #expect(during.value("events_rejected_total", grpcStat.merging(["reason": "invalid_payload"]) { $1 }) == 1)
        #expect(during.value("events_rejected_total", grpcStat.merging(["reason": "invalid_latest_value"]) { $1 }) == 1)
        #expect(during.sum("events_rejected_total") == 3)
        #expect(during.sum("events_received_total", matching: ["source": "kafka"]) == 0)
        #expect(during.value("grpc_request_duration_seconds_count", ["method": Self.loginMethod]) == 8)
        #expect(during.value("grpc_request_duration_seconds_count", ["method": Self.statMethod]) == 8)
        // go-grpc-prometheus's series: every call started, received, handled (by code) and timed.
        let login: [String: String] = [
            "grpc_service": "accelbyte.iam.account.v1.UserAuthenticationUserLoggedInService", "grpc_method": "OnMessage",
            "grpc_type": "unary",
        ]
        #expect(during.value("grpc_server_started_total", login) == 8)
        #expect(during.value("grpc_server_msg_received_total", login) == 8)
        #expect(during.sum("grpc_server_handled_total", matching: login) == 8)
        #expect(during.value("grpc_server_handling_seconds_count", login) == 8)
        #expect(during.value("grpc_server_handled_total", login.merging(["grpc_code": "OK"]) { $1 })
            == during.value("grpc_server_msg_sent_total", login))

        // Two more new users reach the limit: the size trigger flushes everything.
        try await harness.withClients { _, stat in
            for u in 20..<22 { _ = try await stat.onMessage(Self.stat("user-\(u)", id: "s\(u)")) }
        }
        // 4 logins x 10 default goals + 6 stat users x 20 goals are inserted; the 10 non-default
        // login goals of 4 users have no row: 10 x (3 + 1 + 1 + 1) events are unassigned.
        // A flush counts its rows batch by batch and its cycle (flushes_total, flush_rows, the log
        // line) at the end: wait for the end of the cycle, not for the last batch.
        let after = try await http.waitForMetrics {
            $0.sum("rows_written_total") == 160 && $0.value("event_buffer_size") == 0 && $0.value("flush_rows_sum") == 160
        }
        #expect(after.value("rows_written_total", ["operation": "insert"]) == 160)
        #expect(after.value("rows_written_total", ["operation": "update"]) == 0)
        #expect(after.value("events_unassigned_total") == 60)
        #expect(after.value("event_commit_latency_seconds_count") == 200)
        #expect(after.value("flush_rows_sum") == 160)
        let flushes = try #require(after.value("flushes_total"))
        #expect(flushes >= 1 && flushes <= 2)
        #expect(after.value("flush_duration_seconds_count") == flushes)
        #expect(after.value("flush_failures_total") == 0)
        #expect(after.value("flush_consecutive_failures") == 0)
        #expect(after.sum("events_processed_total") == 12)
        #expect(after.value("buffer_backpressure_activations_total") == 0)
        #expect(try harness.tableRows().count == 160)
        // The process families read /proc: plausible values, not zeros.
        #expect((after.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((after.value("process_open_fds") ?? 0) >= 3)
        #expect((after.value("process_max_fds") ?? 0) >= (after.value("process_open_fds") ?? .infinity))
        #expect((after.value("process_cpu_seconds_total") ?? 0) > 0)
        let started = after.value("process_start_time_seconds") ?? 0
        #expect(abs(started - Date().timeIntervalSince1970) < 600, "start time \(started)")

        // Exactly the families, labels and label values of deploy/prometheus/metrics.txt, the
        // list the alert rules and the dashboard are checked against.
        let documented = try MetricsList.load()
        #expect(Set(documented.keys).subtracting([
            "kafka_consumer_lag", "kafka_records_skipped_total", "kafka_dead_letters_total", "dedup_redis_up",
            "dedup_redis_failed_commands_total",
        ]) == Set(Self.families.keys))
        for (family, type) in Self.families {
            #expect(documented[family]?.type == type, "metrics.txt: \(family)")
        }
        for series in after.series {
            let family = MetricsList.family(of: series.name, types: after.types)
            guard let spec = documented[family] else {
                Issue.record("\(series.name) is exported but not in deploy/prometheus/metrics.txt")
                continue
            }
            var labels = series.labels
            if series.name.hasSuffix("_bucket") { labels["le"] = nil }
            #expect(Set(labels.keys) == Set(spec.labels.keys), "\(series.name) labels \(labels)")
            for (key, value) in labels {
                if let allowed = spec.labels[key] ?? nil {
                    #expect(allowed.contains(value), "\(series.name){\(key)=\"\(value)\"} not in metrics.txt")
                }
            }
        }

        let other = try await http.get("/nope")
        #expect(other.status == 404)
        #expect(try harness.stop() == 0)

        // Logs: one line per flush at debug, nothing per event, no password.
        let log = harness.process.log
        let lines = log.split(separator: "\n")
        #expect(lines.filter { $0.contains("] flushed") }.count == Int(flushes), "\(log)")
        #expect(!lines.contains { $0.contains("user-13") || $0.contains("s13") }, "an event reached the log:\n\(log)")
        #expect(!log.contains("pw-never-logged-7f3a"))
    }

    @Test(
        "/readyz: 503 while the database is away at start-up, 200 once the pool is warm, 503 while draining; /healthz 200 throughout",
        .timeLimit(.minutes(5)))
    func readiness() async throws {
        let server = try PostgresServer()
        defer { server.shutdown() }
        let catalog = TestCatalog()
        // The database goes away after migrating and before the service starts.
        let harness = try ServiceHarness(
            server: server, catalogJSON: catalog.json,
            environment: ["SHUTDOWN_TIMEOUT": "2m", "DB_CONNECT_TIMEOUT": "1s", "BUFFER_FLUSH_INTERVAL": "100ms"],
            waitForReady: false, prepare: { _ in try server.stop() })
        let http = harness.http

        try harness.process.waitForLog("database unreachable at start-up")
        try await http.waitFor("/healthz") { $0.status == 200 && $0.body == "ok\n" }
        let starting = try await http.get("/readyz")
        #expect(starting.status == 503)
        #expect(starting.body == "not ready: starting\n")
        #expect(try await http.metrics().value("service_ready") == 0)

        try server.start()
        try await http.waitFor("/readyz") { $0.status == 200 }
        #expect(harness.process.log.contains("] ready"))
        #expect(try await http.get("/readyz").body == "ready\n")
        #expect(try await http.metrics().value("service_ready") == 1)

        // Draining takes as long as the database stays away: one buffered event cannot be written.
        try server.stop()
        try await harness.withClients { login, _ in
            _ = try await login.onMessage(Self.login("drainer", id: "d1"))
        }
        harness.process.signal(SIGTERM)
        try harness.process.waitForLog("draining")
        let draining = try await http.get("/readyz")
        #expect(draining.status == 503)
        #expect(draining.body == "not ready: draining\n")
        #expect(try await http.get("/healthz").status == 200)
        #expect(try await http.metrics().value("service_ready") == 0)
        // The drain's flushes fail while the database is away, and the gauges say so.
        try await http.waitForMetrics { ($0.value("flush_consecutive_failures") ?? 0) > 0 && ($0.value("flush_failures_total") ?? 0) > 0 }

        // The database comes back: the drain writes the event and the process exits cleanly.
        try server.start()
        #expect(try harness.process.waitForExit() == 0)
        #expect(try harness.tableRows().keys.contains { $0.hasPrefix("drainer|") })
    }
}

/// deploy/prometheus/metrics.txt: `name type label=a|b label2=*` per line.
enum MetricsList {
    struct Family {
        var type: String
        /// Label → allowed values (nil: any value).
        var labels: [String: Set<String>?]
    }

    static func load() throws -> [String: Family] {
        let text = try String(contentsOfFile: PostgresServer.repositoryRoot + "/deploy/prometheus/metrics.txt", encoding: .utf8)
        var families: [String: Family] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let words = line.split(separator: " ").map(String.init)
            var labels: [String: Set<String>?] = [:]
            for word in words.dropFirst(2) {
                let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
                labels[parts[0]] = parts[1] == "*" ? .some(nil) : Set(parts[1].split(separator: "|").map(String.init))
            }
            families[words[0]] = Family(type: words[1], labels: labels)
        }
        return families
    }

    /// The family a sample belongs to (`flush_rows_bucket` → `flush_rows` when that is a histogram).
    static func family(of sample: String, types: [String: String]) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where sample.hasSuffix(suffix) {
            let base = String(sample.dropLast(suffix.count))
            if types[base] == "histogram" { return base }
        }
        return sample
    }
}
