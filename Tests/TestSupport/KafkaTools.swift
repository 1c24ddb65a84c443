import Foundation

/// kcat, Debian's Kafka client: the independent producer and consumer of these tests.
public enum Kcat {
    /// Produces `lines` ("key\tvalue") to `topic`; each record's key picks its partition.
    public static func produce(
        _ lines: [String], topic: String, bootstrap: String, headers: [String] = [], properties: [String] = []
    ) throws {
        let (status, output) = try run(
            ["-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-X", "linger.ms=5"] + headers.flatMap { ["-H", $0] }
                + properties.flatMap { ["-X", $0] },
            input: lines.joined(separator: "\n") + "\n")
        guard status == 0 else { throw TestFailure("kcat -P exited \(status): \(output)") }
    }

    /// Every record of `topic` from its beginning up to its end now, one "key TAB value TAB
    /// headers" line each (kcat's `%k`, `%s`, `%h`: headers as `name=value,name=value`).
    public static func consume(topic: String, bootstrap: String) throws -> [String] {
        let (status, output) = try run(
            ["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\t%s\t%h\n"])
        guard status == 0 else { throw TestFailure("kcat -C exited \(status): \(output)") }
        return output.split(separator: "\n").map(String.init)
    }

    /// Reads `topics` as a member of consumer group `group` up to their end now, and exits
    /// committing what it read (kcat's balanced consumer, auto-commit on): what an incumbent
    /// consumer of that group leaves behind. Returns how many records it read.
    @discardableResult
    public static func consumeCommitting(group: String, topics: [String], bootstrap: String) throws -> Int {
        let (status, output) = try run(
            ["-b", bootstrap, "-G", group] + topics
                + ["-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-e", "-q", "-f", "%o\n"])
        guard status == 0 else { throw TestFailure("kcat -G exited \(status): \(output)") }
        return output.split(separator: "\n").filter { Int($0) != nil }.count
    }

    /// Metadata as kcat prints it (`-L`).
    public static func metadata(bootstrap: String) throws -> String {
        let (status, output) = try run(["-L", "-b", bootstrap])
        guard status == 0 else { throw TestFailure("kcat -L exited \(status): \(output)") }
        return output
    }

    public static func run(_ arguments: [String], input: String? = nil) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        // Input from a file, as a shell redirection gives it: kcat reads it at its own pace.
        var inputFile: String?
        if let input {
            let path = NSTemporaryDirectory() + "kcat-\(UUID().uuidString).txt"
            try input.write(toFile: path, atomically: false, encoding: .utf8)
            process.standardInput = FileHandle(forReadingAtPath: path)
            inputFile = path
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        defer { if let inputFile { try? FileManager.default.removeItem(atPath: inputFile) } }
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Reads a pipe line by line, blocking.
public final class LineReader {
    private let handle: FileHandle
    private var buffer = Data()

    public init(_ handle: FileHandle) {
        self.handle = handle
    }

    public func next() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                return String(decoding: line, as: UTF8.self)
            }
            let chunk = handle.availableData
            if chunk.isEmpty { return buffer.isEmpty ? nil : String(decoding: buffer, as: UTF8.self) }
            buffer.append(chunk)
        }
    }
}

/// `dev-kafka`, the project's development broker, as a child process: its bootstrap address,
/// and broker faults through its control input.
public final class DevKafkaProcess: @unchecked Sendable {
    // @unchecked: the Process and pipes are used from one test at a time.
    public let process: Process
    public let bootstrap: String
    private let control: FileHandle
    private let lines: LineReader

    public static var binaryPath: String {
        ServiceProcess.binaryPath(of: "dev-kafka")
    }

    /// Starts it with `topics` (`NAME` or `NAME:PARTITIONS`) and waits for its address.
    public init(topics: [String], partitions: Int = 8, brokers: Int = 1) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binaryPath)
        process.arguments = ["--brokers", String(brokers), "--partitions", String(partitions)] + topics
        let output = Pipe(), input = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = input
        try process.run()
        self.process = process
        control = input.fileHandleForWriting
        lines = LineReader(output.fileHandleForReading)
        guard let first = lines.next(), first.hasPrefix("bootstrap=") else {
            process.terminate()
            throw TestFailure("dev-kafka did not print its bootstrap address")
        }
        bootstrap = String(first.dropFirst("bootstrap=".count))
        _ = lines.next()  // topics=…
    }

    /// Sends one control line (`down N`, `up N`) and returns its answer.
    @discardableResult
    public func command(_ line: String) -> String? {
        control.write(Data((line + "\n").utf8))
        return lines.next()
    }

    public func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}
