import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GameEvents
import GameEventsGRPC
import Kafka
import SwiftProtobuf

// event-demo: sends a handful of events to a running service the way the platform does, over
// gRPC (the event bridge's two methods) and, when given brokers, over Kafka (proto3 JSON records
// on the platform's two topics). `make demo` runs it and shows the rows that changed.
//
//   event-demo --namespace NS --stat-code CODE [--grpc HOST:PORT] [--kafka BROKERS] [--users N]

struct Options {
    var grpcHost = "127.0.0.1"
    var grpcPort = 6565
    var namespace = ""
    var statCode = ""
    var kafka: String?
    var users = 3

    static func parse(_ arguments: ArraySlice<String>) -> Options {
        var options = Options()
        var rest = arguments
        while let argument = rest.popFirst() {
            guard let value = rest.popFirst() else { usage("\(argument) needs a value") }
            switch argument {
            case "--grpc":
                let parts = value.split(separator: ":")
                guard parts.count == 2, let port = Int(parts[1]) else { usage("--grpc takes HOST:PORT") }
                options.grpcHost = String(parts[0])
                options.grpcPort = port
            case "--namespace": options.namespace = value
            case "--stat-code": options.statCode = value
            case "--kafka": options.kafka = value.isEmpty ? nil : value
            case "--users":
                guard let n = Int(value), (1...100).contains(n) else { usage("--users takes 1...100") }
                options.users = n
            default: usage("unknown option \(argument)")
            }
        }
        if options.namespace.isEmpty || options.statCode.isEmpty { usage("--namespace and --stat-code are required") }
        return options
    }

    static func usage(_ problem: String) -> Never {
        FileHandle.standardError.write(
            Data("event-demo: \(problem)\nusage: event-demo --namespace NS --stat-code CODE [--grpc HOST:PORT] [--kafka BROKERS] [--users N]\n".utf8))
        exit(2)
    }
}

func login(_ user: String, namespace: String) -> Accelbyte_Iam_Account_V1_UserLoggedIn {
    .with {
        $0.id = UUID().uuidString.lowercased()
        $0.namespace = namespace
        $0.userID = user
        $0.payload.userAccount.userID = user
    }
}

func stat(_ user: String, namespace: String, code: String, value: Double) -> Accelbyte_Social_Statistic_V1_StatItemUpdated {
    .with {
        $0.id = UUID().uuidString.lowercased()
        $0.namespace = namespace
        $0.userID = user
        $0.payload.statCode = code
        $0.payload.userID = user
        $0.payload.latestValue = value
        $0.payload.inc = value
    }
}

let options = Options.parse(CommandLine.arguments.dropFirst())
let value = Double(Int.random(in: 1...9))

// gRPC: demo-grpc-1…N, one login and one stat each.
do {
    try await withGRPCClient(
        transport: try .http2NIOPosix(
            target: .dns(host: options.grpcHost, port: options.grpcPort), transportSecurity: .plaintext)
    ) { client in
        let logins = Accelbyte_Iam_Account_V1_UserAuthenticationUserLoggedInService.Client(wrapping: client)
        let stats = Accelbyte_Social_Statistic_V1_StatisticStatItemUpdatedService.Client(wrapping: client)
        for i in 1...options.users {
            let user = "demo-grpc-\(i)"
            _ = try await logins.onMessage(login(user, namespace: options.namespace))
            _ = try await stats.onMessage(stat(user, namespace: options.namespace, code: options.statCode, value: value))
        }
    }
    print("gRPC  \(options.grpcHost):\(options.grpcPort): \(options.users) logins and \(options.users) \(options.statCode)=\(Int(value)) for demo-grpc-1…\(options.users)")
} catch {
    FileHandle.standardError.write(Data("event-demo: gRPC to \(options.grpcHost):\(options.grpcPort) failed: \(error)\n".utf8))
    exit(1)
}

// Kafka: demo-kafka-1…N, the same, as proto3 JSON records keyed by user.
if let brokers = options.kafka {
    do {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: brokers))
        let loginTopic = "\(options.namespace).iam.account.v1.userLoggedIn"
        let statTopic = "\(options.namespace).social.statistic.v1.statItemUpdated"
        for i in 1...options.users {
            let user = "demo-kafka-\(i)"
            try producer.send(
                KafkaOutgoingRecord(
                    topic: loginTopic, key: Array(user.utf8), value: try login(user, namespace: options.namespace).jsonUTF8Bytes()))
            try producer.send(
                KafkaOutgoingRecord(
                    topic: statTopic, key: Array(user.utf8),
                    value: try stat(user, namespace: options.namespace, code: options.statCode, value: value).jsonUTF8Bytes()))
        }
        guard producer.flush(timeout: .seconds(30)), producer.failed == 0 else {
            throw KafkaError("\(producer.failed) records failed, \(producer.outstanding) not delivered")
        }
        producer.close(timeout: .seconds(1))
        print("Kafka \(brokers): \(options.users) logins and \(options.users) \(options.statCode)=\(Int(value)) for demo-kafka-1…\(options.users)")
    } catch {
        FileHandle.standardError.write(Data("event-demo: Kafka to \(brokers) failed: \(error)\n".utf8))
        exit(1)
    }
}
