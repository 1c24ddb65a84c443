import Foundation
import ServiceTestSupport

/// What one fault scenario measured, for the "What it survives" table of docs/reliability.md: printed as a
/// `fault-report:` line, and appended as JSON to the file `FAULT_REPORT` names, if any
/// (`make test-faults` sets it and renders the table with `scripts/fault-table.py`).
struct FaultReport: Codable {
    var fault: String
    var load: String
    var eventsSent: Int
    /// Calls answered otherwise than OK and sent again (gRPC), or 0.
    var retried: Int
    /// Login events whose count is missing from the table (logins add up, so each one lost
    /// shows), and login events counted twice.
    var loginsLost: Int
    var loginsDoubled: Int
    /// Rows that differ from the model in any column (0: the table is exact).
    var rowsDiffering: Int
    /// From the end of the fault to the service doing its job again (what that means is in
    /// `recoveredWhen`).
    var recoverySeconds: Double?
    var recoveredWhen: String
    var durationSeconds: Double

    init(
        fault: String, load: String, eventsSent: Int, retried: Int = 0, model: ExpectedState,
        actual: [String: ExpectedRow], recovery: Duration?, recoveredWhen: String, duration: Duration
    ) {
        self.fault = fault
        self.load = load
        self.eventsSent = eventsSent
        self.retried = retried
        var lost = 0
        var doubled = 0
        // Goal c*-g00 counts logins (one row per challenge): challenge 0's row is a user's count.
        for (key, row) in model.rows where key.hasSuffix("|c0-g00") {
            let got = actual[key]?.progress ?? 0
            if got < row.progress { lost += row.progress - got }
            if got > row.progress { doubled += got - row.progress }
        }
        for (key, row) in actual where key.hasSuffix("|c0-g00") && model.rows[key] == nil {
            doubled += row.progress
        }
        loginsLost = lost
        loginsDoubled = doubled
        rowsDiffering = Set(model.rows.keys).union(actual.keys).filter { model.rows[$0] != actual[$0] }.count
        recoverySeconds = recovery.map { ($0.seconds * 100).rounded() / 100 }
        self.recoveredWhen = recoveredWhen
        durationSeconds = (duration.seconds * 10).rounded() / 10
    }

    func publish() {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(self), let line = String(data: data, encoding: .utf8) else { return }
        print("fault-report: \(line)")
        guard let path = ProcessInfo.processInfo.environment["FAULT_REPORT"], !path.isEmpty else { return }
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        handle.write(Data((line + "\n").utf8))
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
