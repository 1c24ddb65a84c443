import Foundation
import Kafka

/// `dev-kafka`: a development Kafka broker for this machine. It runs librdkafka's mock cluster
/// (real Kafka protocol, in memory, on loopback, no persistence), creates the topics it is given,
/// prints the bootstrap address, and serves until SIGTERM or SIGINT. Not a production broker:
/// production uses a real Kafka (docker-compose.yml).
///
/// Standard input takes optional control lines, for fault tests: `down N` / `up N` take broker N
/// (1-based) down or up, `topic NAME PARTITIONS` creates a topic. Each is answered `ok` or
/// `error: …` on standard output.
let usage = """
    usage: dev-kafka [--brokers N] [--partitions P] [--bootstrap-file PATH] [TOPIC[:PARTITIONS] ...]
      --brokers N           mock brokers (default 1)
      --partitions P        partitions of each topic without its own count (default 8)
      --bootstrap-file PATH also write the bootstrap address to PATH
      TOPIC                 topics to create; default: the two platform topics of AB_NAMESPACE
                            ({ns}.iam.account.v1.userLoggedIn, {ns}.social.statistic.v1.statItemUpdated)
    Prints "bootstrap=HOST:PORT,..." once the brokers listen, then serves until SIGTERM/SIGINT.
    """

/// One line on standard output, written at once (no stdio buffer: scripts read it as it comes).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("dev-kafka: \(message)\n".utf8))
    exit(2)
}

var brokers = 1
var partitions = 8
var bootstrapFile: String?
var topics: [(String, Int?)] = []
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--brokers":
        guard let n = arguments.popFirst().flatMap(Int.init), (1...9).contains(n) else { fail("--brokers takes 1...9\n\(usage)") }
        brokers = n
    case "--partitions":
        guard let n = arguments.popFirst().flatMap(Int.init), (1...1_000).contains(n) else { fail("--partitions takes 1...1000\n\(usage)") }
        partitions = n
    case "--bootstrap-file":
        guard let path = arguments.popFirst() else { fail("--bootstrap-file takes a path\n\(usage)") }
        bootstrapFile = path
    case "-h", "--help":
        say(usage)
        exit(0)
    default:
        if argument.hasPrefix("-") { fail("unknown option \(argument)\n\(usage)") }
        let parts = argument.split(separator: ":", maxSplits: 1).map(String.init)
        if parts.count == 2 {
            guard let n = Int(parts[1]), (1...1_000).contains(n) else { fail("bad partition count in \(argument)") }
            topics.append((parts[0], n))
        } else {
            topics.append((argument, nil))
        }
    }
}
if topics.isEmpty {
    guard let namespace = ProcessInfo.processInfo.environment["AB_NAMESPACE"], !namespace.isEmpty else {
        fail("name the topics, or set AB_NAMESPACE for the platform's two\n\(usage)")
    }
    topics = [("\(namespace).iam.account.v1.userLoggedIn", nil), ("\(namespace).social.statistic.v1.statItemUpdated", nil)]
}

// Signals are taken by sigwait below, not by handlers: block them before any thread starts.
var signals = sigset_t()
sigemptyset(&signals)
sigaddset(&signals, SIGTERM)
sigaddset(&signals, SIGINT)
pthread_sigmask(SIG_BLOCK, &signals, nil)

let cluster: MockKafkaCluster
do {
    cluster = try MockKafkaCluster(brokers: brokers)
    for (topic, count) in topics { try cluster.createTopic(topic, partitions: count ?? partitions) }
} catch {
    fail("\(error)")
}
if let bootstrapFile {
    do {
        try (cluster.bootstrapServers + "\n").write(toFile: bootstrapFile, atomically: true, encoding: .utf8)
    } catch {
        fail("cannot write \(bootstrapFile): \(error)")
    }
}
say("bootstrap=\(cluster.bootstrapServers)")
say("topics=\(topics.map { "\($0.0):\($0.1 ?? partitions)" }.joined(separator: ","))")

// Control lines, on a thread of their own (reading standard input blocks).
let control = Thread {
    while let line = readLine() {
        let words = line.split(separator: " ").map(String.init)
        do {
            switch (words.first, words.count) {
            case ("down", 2):
                guard let id = Int(words[1]) else { throw KafkaError("down takes a broker number") }
                try cluster.setBrokerDown(id)
            case ("up", 2):
                guard let id = Int(words[1]) else { throw KafkaError("up takes a broker number") }
                try cluster.setBrokerUp(id)
            case ("topic", 3):
                guard let count = Int(words[2]) else { throw KafkaError("topic takes NAME PARTITIONS") }
                try cluster.createTopic(words[1], partitions: count)
            default:
                throw KafkaError("unknown command \"\(line)\" (down N | up N | topic NAME PARTITIONS)")
            }
            say("ok")
        } catch {
            say("error: \(error)")
        }
    }
}
control.start()

var received: Int32 = 0
sigwait(&signals, &received)
FileHandle.standardError.write(Data("dev-kafka: signal \(received), stopping\n".utf8))
cluster.shutdown()
exit(0)
