import BenchSupport
import Foundation

/// What one run measured; written as JSON next to the printed table.
struct BenchReport: Encodable {
    struct BufferResult: Encodable {
        var threads: Int
        var mergesPerSecond: Double
    }

    struct FlushResult: Encodable {
        var batch: Int
        var connections: Int
        var ceilingRowsPerSecond: Double
        var ceilingP99Milliseconds: Double
        var flushRowsPerSecond: Double
        var flushP99Milliseconds: Double
        /// ours / ceiling, same batch size and connection count, same run.
        var ratio: Double
    }

    var startedAt = ""
    var secondsPerMeasurement = 0.0
    var machine = ["cores": ProcessInfo.processInfo.activeProcessorCount]
    var table: [String: Int] = [:]
    var buffer: [BufferResult] = []
    var shardHash: [ShardHashBench.Result] = []
    var flush: [FlushResult] = []

    func write(directory: String) throws -> String {
        try BenchResults.write(self, name: "core", startedAt: startedAt, directory: directory)
    }
}
