import Foundation
import TestSupport
import Testing

/// postgresql-tuning.conf against the real PostgreSQL 15: started the way docker-compose starts it
/// (`-c config_file=…`, nothing scaled), every line is accepted and SHOW answers its value.
@Suite("PostgreSQL tuning file")
struct TuningConfigurationTests {
    static let file = PostgresServer.repositoryRoot + "/postgresql-tuning.conf"

    /// The file's settings, `name = value` lines, in order (comments and blank lines skipped).
    static func settings() throws -> [(line: Int, name: String, value: String)] {
        try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .enumerated().compactMap { index, raw in
                let text = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                    .trimmingCharacters(in: .whitespaces)
                guard !text.isEmpty else { return nil }
                let parts = text.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2 else { throw TestFailure("postgresql-tuning.conf:\(index + 1) is not name = value") }
                return (index + 1, parts[0], parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "'")))
            }
    }

    @Test("started with config_file, PostgreSQL 15 applies every line, and SHOW answers the file's values")
    func everyLineApplies() async throws {
        try await onThread {
            let expected = try Self.settings()
            #expect(expected.contains { $0.name == "shared_buffers" && $0.value == "2GB" })
            #expect(expected.contains { $0.name == "shared_preload_libraries" && $0.value == "pg_stat_statements" })
            let server = try PostgresServer(
                extraOptions: "-c config_file=\(Self.file) -c listen_addresses=127.0.0.1 -c unix_socket_directories=''")
            defer { server.shutdown() }

            #expect(try server.query("SHOW server_version_num").first?.first??.hasPrefix("15") == true)
            let lines = try server.query(
                """
                SELECT sourceline, name, applied, coalesce(error, '') FROM pg_file_settings
                WHERE sourcefile = '\(Self.file)' ORDER BY sourceline
                """)
            #expect(lines.map { Int($0[0] ?? "") ?? 0 } == expected.map(\.line), "\(lines)")
            for row in lines {
                #expect(row[2] == "t" && row[3] == "", "\(row[1] ?? "?"): not applied: \(row[3] ?? "")")
            }
            for setting in expected {
                let shown = try server.query("SHOW \"\(setting.name)\"").first?.first ?? nil
                #expect(shown == setting.value, "SHOW \(setting.name) = \(shown ?? "nil"), the file says \(setting.value)")
            }
            // pg_stat_statements is loaded and counting.
            _ = try server.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            #expect(try server.query("SELECT count(*) > 0 FROM pg_stat_statements").first?.first == "t")
        }
    }
}
