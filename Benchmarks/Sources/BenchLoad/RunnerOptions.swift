import Foundation

/// `bench-load`'s command line (the Makefile's `bench` target passes PROFILE, BENCH_SCALE and
/// BENCH_TOOL through it).
struct RunnerOptions {
    enum Tool: String {
        /// bench/k6/events.js: the profiles as the tuning guide runs them.
        case k6
        /// LoadGenerator: one HTTP/2 connection, 500 in flight, fast enough to find the ceiling.
        case generator
    }

    var profile = "smoke"
    var scale = 0.05
    var tool = Tool.k6
    var systems: [SystemUnderTest.Kind] = [.service, .naive]
    /// Vary one service setting over these values instead of comparing with the naive peer.
    var sweep: Sweep?
    var k6 = ".build/bench-venv/bin/k6"
    var binaries = ".build/release"
    var outputDirectory = "bench/results"
    var perf = false
    /// Extra service settings (`--set FLUSH_WORKERS=4`).
    var serviceSettings: [String: String] = [:]
    var ceilingSeconds = 3.0

    enum Sweep: String, CaseIterable {
        case flushInterval = "flush-interval"
        case pool
        case batch

        /// The values tried, as the service's environment.
        var variants: [(label: String, settings: [String: String])] {
            switch self {
            case .flushInterval:
                return ["500ms", "1s", "2s", "5s"].map { ("flush \($0)", ["BUFFER_FLUSH_INTERVAL": $0]) }
            case .pool:
                return [1, 2, 4, 8].map {
                    ("\($0) flush workers", ["FLUSH_WORKERS": String($0), "DB_MAX_OPEN_CONNS": String($0 + 2)])
                }
            case .batch:
                return [100, 1_000, 5_000, 20_000].map { ("batch \($0)", ["FLUSH_BATCH_SIZE": String($0)]) }
            }
        }
    }

    static func parse(_ arguments: ArraySlice<String>) -> RunnerOptions {
        var options = RunnerOptions()
        var rest = arguments
        func value() -> String {
            guard let next = rest.popFirst(), !next.isEmpty else { usage() }
            return next
        }
        while let argument = rest.popFirst() {
            switch argument {
            case "--profile": options.profile = value()
            case "--scale":
                guard let scale = Double(value()), scale > 0 else { usage() }
                options.scale = scale
            case "--tool":
                guard let tool = Tool(rawValue: value()) else { usage() }
                options.tool = tool
            case "--systems":
                let kinds = value().split(separator: ",").map { SystemUnderTest.Kind(rawValue: String($0)) }
                guard !kinds.isEmpty, kinds.allSatisfy({ $0 != nil }) else { usage() }
                options.systems = kinds.compactMap { $0 }
            case "--sweep":
                guard let sweep = Sweep(rawValue: value()) else { usage() }
                options.sweep = sweep
            case "--k6": options.k6 = value()
            case "--bin": options.binaries = value()
            case "--out": options.outputDirectory = value()
            case "--perf": options.perf = true
            case "--ceiling-seconds":
                guard let seconds = Double(value()), seconds >= 0 else { usage() }
                options.ceilingSeconds = seconds
            case "--set":
                let pair = value().split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { usage() }
                options.serviceSettings[String(pair[0])] = String(pair[1])
            default: usage()
            }
        }
        return options
    }

    static func usage() -> Never {
        print(
            """
            usage: bench-load [--profile NAME] [--scale S] [--tool k6|generator] [--systems service,naive-peer]
                              [--sweep flush-interval|pool|batch] [--set KEY=VALUE]... [--perf]
                              [--k6 PATH] [--bin DIR] [--out DIR] [--ceiling-seconds S]
              --ceiling-seconds S  length of each ceiling measurement (default 3; 0 skips the
                               ceiling and its 1,000,000-row table, for sweeps)
              --profile NAME   a profile of bench/profiles.json (default smoke)
              --scale S        multiplies every duration of the profile (default 0.05: the tuning
                               guide's 30-minute target test becomes 90 s)
              --tool           k6 (bench/k6/events.js, default) or generator (LoadGenerator: one
                               HTTP/2 connection, 500 in flight, for rates k6 cannot reach)
              --systems        which systems get the same load, in order (default both)
              --sweep          instead: the service alone, once per value of one setting
              --set KEY=VALUE  a service setting (environment) for every service run
              --perf           record the service with perf during the load; keep its hottest symbols
            Writes bench/results/<profile>-<time>.json (or sweep-<setting>-<time>.json).
            """)
        exit(2)
    }
}
