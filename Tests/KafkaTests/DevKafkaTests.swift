import Foundation
import TestSupport
import Testing

/// `dev-kafka`, the development broker, as a user runs it: a real process on loopback.
@Suite("dev-kafka")
struct DevKafkaTests {
    static var binary: String {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("dev-kafka").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return "dev-kafka"
    }

    @Test("serves the named topics, prints its bootstrap, takes broker faults on standard input, stops on SIGTERM", .timeLimit(.minutes(2)))
    func servesAndStops() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["--brokers", "2", "--partitions", "3", "orders", "clicks:5"]
        let output = Pipe(), input = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = input
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let lines = LineReader(output.fileHandleForReading)

        let first = try #require(lines.next())
        #expect(first.hasPrefix("bootstrap=127.0.0.1:"), "\(first)")
        let bootstrap = String(first.dropFirst("bootstrap=".count))
        #expect(lines.next() == "topics=orders:3,clicks:5")

        let metadata = try Kcat.metadata(bootstrap: bootstrap)
        #expect(metadata.contains("2 brokers"), "\(metadata)")
        #expect(metadata.contains("topic \"orders\" with 3 partitions"), "\(metadata)")
        #expect(metadata.contains("topic \"clicks\" with 5 partitions"), "\(metadata)")

        // Records round-trip through it.
        try Kcat.produce(["k1\thello", "k2\tworld"], topic: "orders", bootstrap: bootstrap)
        let (status, consumed) = try Kcat.run(["-C", "-b", bootstrap, "-t", "orders", "-e", "-q", "-f", "%s\n"])
        #expect(status == 0)
        #expect(Set(consumed.split(separator: "\n")) == ["hello", "world"])

        // Fault control: broker 2 down and up again; a bad command is answered, not fatal.
        input.fileHandleForWriting.write(Data("down 2\nup 2\nfly away\n".utf8))
        #expect(lines.next() == "ok")
        #expect(lines.next() == "ok")
        #expect(lines.next()?.hasPrefix("error: unknown command") == true)

        process.interrupt()  // SIGINT, as Ctrl-C
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test("without topics it serves the platform's two for AB_NAMESPACE, and refuses to guess without it")
    func defaultTopics() throws {
        for (namespace, expectOK) in [("mygame", true), ("", false)] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.binary)
            process.environment = namespace.isEmpty ? [:] : ["AB_NAMESPACE": namespace]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let lines = LineReader(output.fileHandleForReading)
            if expectOK {
                _ = lines.next()
                #expect(lines.next() == "topics=mygame.iam.account.v1.userLoggedIn:8,mygame.social.statistic.v1.statItemUpdated:8")
                process.terminate()
                process.waitUntilExit()
                #expect(process.terminationStatus == 0)
            } else {
                process.waitUntilExit()
                #expect(process.terminationStatus == 2)
                #expect(lines.next()?.contains("AB_NAMESPACE") == true)
            }
        }
    }
}
