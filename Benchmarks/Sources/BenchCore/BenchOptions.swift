import Foundation

struct BenchOptions {
    var seconds: Double = 5
    var outputDirectory = "bench/results"
    /// Measure the buffer only (no PostgreSQL).
    var bufferOnly = false

    static func parse(_ arguments: ArraySlice<String>) -> BenchOptions {
        var options = BenchOptions()
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            switch argument {
            case "--seconds":
                guard let value = rest.popFirst().flatMap(Double.init), value > 0 else { usage() }
                options.seconds = value
            case "--buffer-only":
                options.bufferOnly = true
            case "--out":
                guard let value = rest.popFirst() else { usage() }
                options.outputDirectory = value
            default:
                usage()
            }
        }
        return options
    }

    static func usage() -> Never {
        print("usage: bench-core [--seconds S] [--buffer-only] [--out DIRECTORY]")
        exit(2)
    }
}
