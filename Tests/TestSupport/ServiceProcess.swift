import Foundation
import Synchronization

/// The real `event-handler` executable (or another of the package's executables, such as
/// `naive-peer`), started as a child process for end-to-end tests.
///
/// It is found next to the test bundle (SwiftPM puts both in the same build folder, and the test
/// target depends on the executable, so it is always built first), or at `EVENT_HANDLER_BIN`.
/// Standard error is collected so a test can wait for a log line and show the log on failure.
public final class ServiceProcess: Sendable {
    public let process: Process
    /// The environment it was started with (as given).
    public let environment: [String: String]
    private let output = OutputBuffer()
    private let outputChanged = DispatchSemaphore(value: 0)

    private final class OutputBuffer: Sendable {
        let text = Mutex<String>("")
        /// Set when the pipe reached end of file: everything the process wrote is in `text`.
        let finished = Atomic<Bool>(false)
    }

    public static var binaryPath: String {
        if let explicit = ProcessInfo.processInfo.environment["EVENT_HANDLER_BIN"] { return explicit }
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        // On Linux the test binary is `<bin>/<package>PackageTests.xctest`; on macOS it sits inside a bundle.
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("event-handler").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return testBinary.deletingLastPathComponent().appendingPathComponent("event-handler").path
    }

    /// The package's executable `name`, from the same build folder as `event-handler` (an
    /// absolute path is taken as it is: `/usr/bin/prlimit`, say, to start the service under it).
    public static func binaryPath(of name: String) -> String {
        if name.hasPrefix("/") { return name }
        return name == "event-handler"
            ? binaryPath : URL(fileURLWithPath: binaryPath).deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// Starts `<executable> <arguments>` with exactly `environment` (plus PATH), in `directory`.
    public init(
        executable: String = "event-handler", arguments: [String] = ["serve"], environment: [String: String],
        directory: String? = nil
    ) throws {
        self.environment = environment
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binaryPath(of: executable))
        process.arguments = arguments
        var env = environment
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        if env["ENV_FILE"] == nil { env["ENV_FILE"] = "/nonexistent/.env" }
        process.environment = env
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        self.process = process
        pipe.fileHandleForReading.readabilityHandler = { [output, outputChanged] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                output.finished.store(true, ordering: .releasing)
            } else {
                output.text.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
            outputChanged.signal()
        }
        try process.run()
    }

    /// Everything the process wrote so far.
    public var log: String { output.text.withLock { $0 } }

    public var isRunning: Bool { process.isRunning }

    /// Waits until the log contains `text`. Throws with the log if the process exits first or
    /// the timeout passes.
    public func waitForLog(_ text: String, timeout: Duration = .seconds(60)) throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if log.contains(text) { return }
            if !process.isRunning {
                waitForEndOfOutput()
                if log.contains(text) { return }
                throw ServiceProcessError("exited (status \(process.terminationStatus)) before logging \"\(text)\"", log: log)
            }
            if ContinuousClock.now >= deadline {
                throw ServiceProcessError("did not log \"\(text)\" within \(timeout)", log: log)
            }
            _ = outputChanged.wait(timeout: .now() + 0.2)
        }
    }

    /// After exit: waits (bounded) until the pipe has delivered the last lines.
    private func waitForEndOfOutput() {
        let deadline = ContinuousClock.now + .seconds(5)
        while !output.finished.load(ordering: .acquiring) && ContinuousClock.now < deadline {
            _ = outputChanged.wait(timeout: .now() + 0.05)
        }
    }

    /// Sends `signal` (SIGTERM by default).
    public func signal(_ number: Int32 = SIGTERM) {
        kill(process.processIdentifier, number)
    }

    /// Waits for the process to exit and returns its exit status; throws on timeout.
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(120)) throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                kill(process.processIdentifier, SIGKILL)
                throw ServiceProcessError("did not exit within \(timeout)", log: log)
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.waitUntilExit()
        waitForEndOfOutput()
        return process.terminationStatus
    }

    /// Stops it hard if it still runs (test clean-up).
    public func terminate() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { terminate() }
}

public struct ServiceProcessError: Error, CustomStringConvertible {
    public let description: String

    public init(_ message: String, log: String) {
        description = "event-handler \(message)\n--- its log ---\n\(log)"
    }
}
