@testable import EventHandler
import FuzzSupport

/// `.env` text → `EnvironmentSource.parseDotEnv` (what `EnvironmentSource.load` reads the file
/// with) → `Settings(source:)`, every setting's reader. Variables that name files (`*_FILE`) are
/// left out, so the target reads nothing from disk, and so are librdkafka plugin properties
/// (which load a shared library).
///
/// Beyond not crashing: every variable read has a name of letters, digits and `_` and an origin
/// `.env:<line>` within the file, in order; a refusal is a `ConfigurationError`; settings that
/// are accepted hold values in their documented ranges.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDotEnv(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // `load` refuses a file that is not UTF-8 before parsing it.
    guard let text = String(validating: UnsafeBufferPointer(start: data, count: size), as: UTF8.self) else { return 0 }
    let pairs: [(String, EnvironmentSource.Value)]
    do {
        pairs = try EnvironmentSource.parseDotEnv(text, fileName: ".env")
    } catch {
        require(error is ConfigurationError, "a refusal that is not a ConfigurationError: \(error)")
        return 0
    }
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
    var previousLine = 0
    var values: [String: EnvironmentSource.Value] = [:]
    for (key, value) in pairs {
        require(!key.isEmpty && key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "variable name \(key.debugDescription)")
        guard value.origin.hasPrefix(".env:"), let line = Int(value.origin.dropFirst(5)) else {
            FuzzSupport.fail(target, "origin \(value.origin.debugDescription)")
        }
        require(line > previousLine && line <= lines, "origin line \(line) after \(previousLine), of \(lines)")
        previousLine = line
        if !key.hasSuffix("_FILE") && !key.uppercased().contains("PLUGIN") { values[key] = value }
    }
    let settings: Settings
    do {
        settings = try Settings(source: EnvironmentSource(values: values))
    } catch {
        require(error is ConfigurationError, "a refusal that is not a ConfigurationError: \(error)")
        return 0
    }
    require(!settings.namespace.isEmpty && settings.namespace.utf8.count <= 100, "namespace \(settings.namespace.debugDescription)")
    require((1...65_535).contains(settings.grpcPort) && (1...65_535).contains(settings.metricsPort), "ports")
    require(settings.grpcPort != settings.metricsPort, "the same port twice")
    require(settings.flushInterval > .zero && settings.shutdownTimeout > .zero, "durations")
    require(settings.dedup.lease >= .seconds(3), "DEDUP_LEASE \(settings.dedup.lease)")
    if let redis = settings.dedup.redis { require(!redis.host.isEmpty && (1...65_535).contains(redis.port), "REDIS_URL") }
    return 0
}

private let target = "fuzz-dotenv"

private func require(_ condition: Bool, _ property: @autoclosure () -> String) {
    FuzzSupport.require(condition, target, property())
}
