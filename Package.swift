// swift-tools-version:6.1
import PackageDescription

// Module map (one concern per target):
//   GameEvents    generated protobuf messages for the wire contract (protos/, scripts/generate-protos.sh)
//   GameEventsGRPC generated grpc-swift stubs for the same services: clients only (make demo, tests,
//                 the benchmarks); the service's own server never builds grpc-swift or its transport
//   Catalog       challenges.json: model, validation, event → goal matching (pure Swift)
//   Buffer        the 256-shard per-user merge buffer (pure Swift, no I/O, no clocks)
//   EventRules    the wire contract's rules: an event as ingest sees it, validation, event → goal
//                 updates (shared by the service and the benchmarks' naive peer, so both answer alike)
//   Lifecycle     SIGTERM/SIGINT as something a task awaits
//   Storage       everything that touches PostgreSQL: libpq connections, the pool, migrations, SQL
//   UnaryGRPC     the gRPC server: unary and server-streaming methods answered on the event loop,
//                 over swift-nio-http2's frames (no stream channels, no task per call), with its limits,
//                 TLS (swift-nio-ssl), bearer tokens and go-grpc-prometheus's metrics
//   EventHandler  the service executable: configuration, ingest, validation, flusher, gRPC, shutdown,
//                 and operations (Prometheus /metrics, /healthz, /readyz over a small NIO HTTP server)
//   Redis         the one wrapper over hiredis: a blocking connection with pipelines (CHiredis is the
//                 system library); the service's deduplication runs it on threads of its own
//   Kafka         the one wrapper over librdkafka: a consumer-group member on its own thread, and the
//                 mock cluster (CRdKafka is the system library)
//   DevKafka      `dev-kafka`: a development broker (librdkafka's mock cluster) for `make run` and tests
//   EventDemo     `event-demo`: a handful of events over gRPC and Kafka to a running service (`make demo`)
//   TestSupport   the test harness: private PostgreSQL and Redis servers on loopback, the service as a
//                 child process, a TCP proxy for faults (the benchmarks' tests use it too)
//   ServiceTestSupport  the end-to-end harness: the service on a test database with gRPC and HTTP
//                 clients, the test catalog and workload, the independent model of the table
//
// The benchmarks, the load generator and the naive peer are a package of their own, Benchmarks/,
// which depends on this one by path: this package builds the product and its tests. The fuzz
// targets (libFuzzer) are another such package, Fuzz/.
let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "event-handler",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "event-handler", targets: ["EventHandlerMain"]),
        .executable(name: "dev-kafka", targets: ["DevKafka"]),
        .executable(name: "event-demo", targets: ["EventDemo"]),
        // The modules the benchmarks package builds on (Benchmarks/Package.swift).
        .library(
            name: "EventHandlerModules",
            targets: ["GameEvents", "Catalog", "Buffer", "EventRules", "Lifecycle", "Storage", "ProgressStore", "UnaryGRPC", "Kafka"]
        ),
        // For the fuzz package (Fuzz/Package.swift): the service's library (configuration, Kafka
        // decoding, ingest, the gRPC methods), whose parsers are internal and reached with
        // `@testable import` (debug builds enable testing), and the Redis wrapper alone.
        .library(name: "EventHandlerService", targets: ["EventHandler"]),
        .library(name: "Redis", targets: ["Redis"]),
        .library(name: "GameEventsGRPC", targets: ["GameEventsGRPC"]),
        .library(name: "TestSupport", targets: ["TestSupport"]),
        .library(name: "ServiceTestSupport", targets: ["ServiceTestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(
            name: "GameEvents",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "GameEventsGRPC",
            dependencies: [
                "GameEvents",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .target(
            name: "Kafka",
            dependencies: ["CRdKafka", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),
        // No pkgConfig: hiredis.pc adds -D_FILE_OFFSET_BITS=64, which SwiftPM drops with a warning;
        // the header is found under /usr/include (shim.h says hiredis/hiredis.h) all the same.
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .target(name: "Redis", dependencies: ["CHiredis"], swiftSettings: strictSwift),
        .executableTarget(name: "DevKafka", dependencies: ["Kafka"], swiftSettings: strictSwift),
        .target(name: "Catalog", swiftSettings: strictSwift),
        .target(name: "Buffer", swiftSettings: strictSwift),
        .target(name: "Lifecycle", swiftSettings: strictSwift),
        .target(
            name: "UnaryGRPC",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "EventRules",
            dependencies: ["GameEvents", "Catalog", "Buffer", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strictSwift
        ),
        // The PostgreSQL driver: libpq connections, the pool, parameters, migrations. No domain.
        .target(
            name: "Storage",
            dependencies: ["CLibPQ", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),
        // The service's tables on that driver: the progress UPSERT, dead letters, GDPR deletion,
        // Kafka checkpoints and partition owners, flush commit records.
        .target(
            name: "ProgressStore",
            dependencies: ["Storage", "Buffer", "Catalog", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),
        // The service: everything but `main`, so the tests reach every part of it in process.
        .target(
            name: "EventHandler",
            dependencies: [
                "Buffer",
                "Catalog",
                "EventRules",
                "Lifecycle",
                "Storage",
                "ProgressStore",
                "GameEvents",
                "Kafka",
                "Redis",
                "UnaryGRPC",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(name: "EventHandlerMain", dependencies: ["EventHandler"], swiftSettings: strictSwift),
        .executableTarget(
            name: "EventDemo",
            dependencies: [
                "GameEvents", "GameEventsGRPC", "Kafka",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "TestSupport",
            dependencies: ["Storage", .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport",
            swiftSettings: strictSwift
        ),
        .target(
            name: "ServiceTestSupport",
            dependencies: [
                "TestSupport", "Storage", "GameEvents", "GameEventsGRPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/ServiceTestSupport",
            swiftSettings: strictSwift
        ),
        .testTarget(name: "BufferTests", dependencies: ["Buffer"], swiftSettings: strictSwift),
        .testTarget(name: "LifecycleTests", dependencies: ["Lifecycle"], swiftSettings: strictSwift),
        .testTarget(
            name: "UnaryGRPCTests",
            dependencies: [
                "UnaryGRPC", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(name: "RedisTests", dependencies: ["Redis", "TestSupport"], swiftSettings: strictSwift),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog"], swiftSettings: strictSwift),
        .testTarget(
            name: "KafkaTests",
            dependencies: ["Kafka", "DevKafka", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StorageTests",
            dependencies: ["Storage", "ProgressStore", "Buffer", "Catalog", "TestSupport"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "EventHandlerTests",
            dependencies: [
                "EventHandler",
                "EventRules",
                "DevKafka",
                "GameEvents",
                "GameEventsGRPC",
                "Storage",
                "Catalog",
                "TestSupport",
                "ServiceTestSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
    ]
)
