// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets for every parser of outside input, a package apart from the product (as the
// benchmarks are, Benchmarks/), on the product's modules by path (`..`). Built by
// scripts/fuzz.sh with libFuzzer and AddressSanitizer into a scratch directory of its own
// (`.build-fuzz`): the sanitizer flags apply to every module, so none of it can be shared with
// the product's `.build`. `make fuzz-smoke` (CI, about 20 s each) and `make fuzz` (longer) run
// them; the seed corpora are Fuzz/corpus/<target>/ (docs/development.md, "Fuzzing").
//
//   fuzz-catalog      challenges.json bytes → Catalog.parse
//   fuzz-kafka-value  a Kafka record's value (proto3 JSON or binary protobuf) → event → validation
//                     → goal matching; JSON and protobuf decodings of one message agree
//   fuzz-dotenv       `.env` text → EnvironmentSource's reader → Settings
//   fuzz-redis-url    REDIS_URL → RedisURL, its parts consistent and written back unchanged
//   fuzz-redis-reply  bytes from a Redis server → hiredis's reader → RedisReply, re-encoded alike
//   fuzz-grpc         bytes from a client → the gRPC server's pipeline (NIOHTTP2 + GRPCConnectionHandler
//                     + the service's methods over an in-process ingest) → frames out, well formed
//
// Each is an executable with no `main` (libFuzzer's is linked in: `-parse-as-library`) that
// exports `LLVMFuzzerTestOneInput`, and checks properties of what it parsed, not only that it
// did not crash. Some parsers are internal to the EventHandler module: `@testable import`
// reaches them, which needs a debug build (SwiftPM compiles debug modules with testing enabled).
let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]
let fuzzSwift = strictSwift + [.unsafeFlags(["-parse-as-library"])]

let modules = Target.Dependency.product(name: "EventHandlerModules", package: "event-handler")
let service = Target.Dependency.product(name: "EventHandlerService", package: "event-handler")
let redis = Target.Dependency.product(name: "Redis", package: "event-handler")

let package = Package(
    name: "event-handler-fuzz",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fuzz-catalog", targets: ["FuzzCatalog"]),
        .executable(name: "fuzz-kafka-value", targets: ["FuzzKafkaValue"]),
        .executable(name: "fuzz-dotenv", targets: ["FuzzDotEnv"]),
        .executable(name: "fuzz-redis-url", targets: ["FuzzRedisURL"]),
        .executable(name: "fuzz-redis-reply", targets: ["FuzzRedisReply"]),
        .executable(name: "fuzz-grpc", targets: ["FuzzGRPC"]),
    ],
    dependencies: [
        .package(name: "event-handler", path: ".."),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    ],
    targets: [
        .target(name: "FuzzSupport", dependencies: [modules], swiftSettings: strictSwift),
        .executableTarget(name: "FuzzCatalog", dependencies: [modules], swiftSettings: fuzzSwift),
        .executableTarget(
            name: "FuzzKafkaValue",
            dependencies: ["FuzzSupport", modules, service, .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: fuzzSwift),
        .executableTarget(name: "FuzzDotEnv", dependencies: ["FuzzSupport", service], swiftSettings: fuzzSwift),
        .executableTarget(name: "FuzzRedisURL", dependencies: [redis], swiftSettings: fuzzSwift),
        .executableTarget(name: "FuzzRedisReply", dependencies: [redis], swiftSettings: fuzzSwift),
        .executableTarget(
            name: "FuzzGRPC",
            dependencies: [
                "FuzzSupport", modules, service,
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: fuzzSwift),
    ]
)
