// swift-tools-version:6.1
import PackageDescription

// The benchmarks of the event handler, a package apart from the product (as swift-nio and
// swift-kafka-client keep theirs): the product's Package.swift builds the service and its tests;
// this one builds what measures it, on the product's modules (by path, `..`).
//
// The Makefile builds it into the product's own scratch directory (`--scratch-path .build`), so
// the dependencies both share are compiled once and every binary lands in .build/<config>/.
//
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

let modules = Target.Dependency.product(name: "EventHandlerModules", package: "event-handler")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let testSupport = Target.Dependency.product(name: "TestSupport", package: "event-handler")

let package = Package(
    name: "event-handler-benchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bench-core", targets: ["BenchCore"]),
        .executable(name: "bench-drain", targets: ["BenchDrain"]),
        .executable(name: "naive-peer", targets: ["NaivePeer"]),
        .executable(name: "bench-load", targets: ["BenchLoad"]),
        .executable(name: "bench-floor", targets: ["BenchFloor"]),
    ],
    dependencies: [
        .package(name: "event-handler", path: ".."),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        .target(name: "BenchSupport", dependencies: [modules, testSupport, logging], swiftSettings: strictSwift),
        .executableTarget(name: "BenchCore", dependencies: ["BenchSupport", modules, logging], swiftSettings: strictSwift),
        .executableTarget(
            name: "BenchDrain",
            dependencies: ["BenchSupport", modules, testSupport, logging, .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strictSwift
        ),
        .target(
            name: "LoadGenerator",
            dependencies: [
                modules,
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                nioCore, nioPosix,
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(name: "NaivePeer", dependencies: [modules, nioCore, logging], swiftSettings: strictSwift),
        .executableTarget(name: "BenchLoad", dependencies: ["BenchSupport", "LoadGenerator", modules, logging], swiftSettings: strictSwift),
        .executableTarget(name: "BenchFloor", dependencies: [nioCore, nioPosix], swiftSettings: strictSwift),
        .testTarget(name: "BenchLoadTests", dependencies: ["BenchLoad"], swiftSettings: strictSwift),
        .testTarget(name: "LoadGeneratorTests", dependencies: ["LoadGenerator", "BenchSupport", testSupport], swiftSettings: strictSwift),
        .testTarget(
            name: "NaivePeerTests",
            dependencies: [
                "NaivePeer", testSupport,
                .product(name: "ServiceTestSupport", package: "event-handler"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
            ],
            swiftSettings: strictSwift
        ),
    ]
)
