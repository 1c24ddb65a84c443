import BenchSupport
import Foundation

/// `perf record` on the system's process for the length of the load, then the hottest symbols
/// from `perf report` (self time), for the tuning guide's "current bottleneck" section.
final class PerfRecorder {
    private let process: BenchProcess
    private let dataPath: String

    init(pid: Int32, directory: String) throws {
        dataPath = directory + "-perf-\(pid).data"
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/perf") else {
            throw BenchError("--perf needs /usr/bin/perf (apt-get install linux-perf)")
        }
        process = try BenchProcess(
            binary: "/usr/bin/perf", arguments: ["record", "-F", "499", "-g", "-p", String(pid), "-o", dataPath],
            environment: ProcessInfo.processInfo.environment, logPath: dataPath + ".log")
    }

    /// Stops recording and returns up to 15 lines "percent symbol" (self time, this process).
    func stop() -> [String] {
        kill(process.pid, SIGINT)
        process.process.waitUntilExit()
        defer {
            try? FileManager.default.removeItem(atPath: dataPath)
            try? FileManager.default.removeItem(atPath: dataPath + ".log")
        }
        let report = Process()
        report.executableURL = URL(fileURLWithPath: "/usr/bin/perf")
        report.arguments = ["report", "-i", dataPath, "--stdio", "--no-children", "--sort", "symbol", "-g", "none", "--percent-limit", "1"]
        let pipe = Pipe()
        report.standardOutput = pipe
        report.standardError = FileHandle.nullDevice
        guard (try? report.run()) != nil else { return [] }
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        report.waitUntilExit()
        return text.split(separator: "\n")
            .filter { !$0.hasPrefix("#") && $0.contains("%") }
            .prefix(15)
            .map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "  ", with: " ") }
    }
}
