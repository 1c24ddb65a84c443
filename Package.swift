// swift-tools-version:6.1
import PackageDescription

// Module map (one concern per target):
//   GameEvents    generated protobuf + gRPC code for the wire contract (protos/, scripts/generate-protos.sh)
//   Catalog       challenges.json: model, validation, event → goal matching (pure Swift)
//   Buffer        the 256-shard per-user merge buffer (pure Swift, no I/O, no clocks)
//   EventRules    the wire contract's rules: an event as ingest sees it, validation, event → goal
//                 updates (shared by the service and the naive peer, so both answer alike)
//   Lifecycle     SIGTERM/SIGINT as something a task awaits (the service and the naive peer)
//   Storage       everything that touches PostgreSQL: libpq connections, the pool, migrations, SQL
//   UnaryGRPC     the gRPC server: unary and server-streaming methods answered on the event loop,
//                 over swift-nio-http2's frames (no stream channels, no task per call), with its limits
//                 and go-grpc-prometheus's metrics (the service and the naive peer serve through it)
//   EventHandler  the service executable: configuration, ingest, validation, flusher, gRPC, shutdown,
//                 and operations (Prometheus /metrics, /healthz, /readyz over a small NIO HTTP server)
//   Redis         the one wrapper over hiredis: a blocking connection with pipelines (CHiredis is the
//                 system library); the service's deduplication runs it on threads of its own
//   Kafka         the one wrapper over librdkafka: a consumer-group member on its own thread, and the
//                 mock cluster (CRdKafka is the system library)
//   DevKafka      `dev-kafka`: a development broker (librdkafka's mock cluster) for `make run` and tests
//   EventDemo     `event-demo`: a handful of events over gRPC and Kafka to a running service (`make demo`)
//   BenchSupport  what the benchmarks share: a private PostgreSQL, the benchmark catalog, the raw ceiling
//   BenchCore     `bench-core`: buffer and flush throughput against the raw PostgreSQL ceiling
//   BenchDrain    `bench-drain`: the service draining a Kafka backlog, against the same ceiling
//   LoadGenerator the bridge-shaped gRPC load: the profiles' event mix, a fixed arrival rate on one
//                 HTTP/2 connection (frames written directly, NIOHTTP2), latency in HdrHistograms
//                 from each call's intended start
//   NaivePeer     `naive-peer`: the same two gRPC methods with no buffer, one UPSERT per event and
//                 goal (the comparison the benchmarks quote)
//   BenchFloor    `bench-floor`: SwiftNIO's event loop alone, one request per wake-up (the floor
//                 under the gRPC path's CPU per call; bench/floor/ has the kernel's and the server's)
//   BenchLoad     `bench-load`: the load-profile runner behind `make bench` (k6 or LoadGenerator
//                 against the service and the naive peer, sampling, results files)
let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "event-handler",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "event-handler", targets: ["EventHandler"]),
        .executable(name: "bench-core", targets: ["BenchCore"]),
        .executable(name: "dev-kafka", targets: ["DevKafka"]),
        .executable(name: "bench-drain", targets: ["BenchDrain"]),
        .executable(name: "event-demo", targets: ["EventDemo"]),
        .executable(name: "naive-peer", targets: ["NaivePeer"]),
        .executable(name: "bench-load", targets: ["BenchLoad"]),
        .executable(name: "bench-floor", targets: ["BenchFloor"]),
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
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(
            name: "GameEvents",
            dependencies: [
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
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "EventRules",
            dependencies: ["GameEvents", "Catalog", "Buffer", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strictSwift
        ),
        .target(
            name: "Storage",
            dependencies: [
                "CLibPQ",
                "Buffer",
                "Catalog",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "EventHandler",
            dependencies: [
                "Buffer",
                "Catalog",
                "EventRules",
                "Lifecycle",
                "Storage",
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
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "BenchSupport",
            dependencies: ["Catalog", "Storage", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "BenchCore",
            dependencies: ["BenchSupport", "Buffer", "Catalog", "Storage", "CLibPQ"],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "EventDemo",
            dependencies: [
                "GameEvents", "Kafka",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "BenchDrain",
            dependencies: [
                "BenchSupport", "Kafka", "GameEvents", "Storage",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "LoadGenerator",
            dependencies: [
                "GameEvents",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "NaivePeer",
            dependencies: [
                "Catalog", "Storage", "GameEvents", "EventRules", "Buffer", "Lifecycle", "UnaryGRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "BenchLoad",
            dependencies: [
                "BenchSupport", "LoadGenerator", "Storage",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "BenchFloor",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strictSwift
        ),
        .target(
            name: "TestSupport",
            dependencies: ["Storage", .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport",
            swiftSettings: strictSwift
        ),
        .testTarget(name: "BufferTests", dependencies: ["Buffer"], swiftSettings: strictSwift),
        .testTarget(name: "UnaryGRPCTests", dependencies: ["UnaryGRPC"], swiftSettings: strictSwift),
        .testTarget(name: "RedisTests", dependencies: ["Redis", "TestSupport"], swiftSettings: strictSwift),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog"], swiftSettings: strictSwift),
        .testTarget(name: "BenchLoadTests", dependencies: ["BenchLoad"], swiftSettings: strictSwift),
        .testTarget(name: "LoadGeneratorTests", dependencies: ["LoadGenerator", "BenchSupport"], swiftSettings: strictSwift),
        .testTarget(
            name: "KafkaTests",
            dependencies: ["Kafka", "DevKafka", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StorageTests",
            dependencies: ["Storage", "Buffer", "Catalog", "TestSupport"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "EventHandlerTests",
            dependencies: [
                "EventHandler",
                "NaivePeer",
                "EventRules",
                "DevKafka",
                "BenchSupport",
                "GameEvents",
                "Storage",
                "Catalog",
                "TestSupport",
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
