import Foundation

/// Where every benchmark writes what it measured: `<directory>/<name>-<start time>.json`,
/// snake_case keys, sorted, pretty-printed (diffable, and read by the report tools).
public enum BenchResults {
    public static func write(_ results: some Encodable, name: String, startedAt: String, directory: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = "\(directory)/\(name)-\(startedAt.replacingOccurrences(of: ":", with: "")).json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try encoder.encode(results).write(to: URL(fileURLWithPath: path))
        return path
    }
}
