import Foundation

/// Where settings come from: a `.env` file and the process environment, the environment winning.
///
/// The `.env` format is the common one: `KEY=value` lines, `#` comments, blank lines, an optional
/// `export ` prefix, values optionally in single or double quotes (double quotes understand `\n`,
/// `\"` and `\\`). Anything else is an error naming the file and line, because a silently ignored
/// line is a setting the operator believes is in force.
public struct EnvironmentSource: Sendable {
    public struct Value: Sendable, Equatable {
        public let text: String
        /// Where it came from, for messages: `environment` or `.env:12`.
        public let origin: String
    }

    private let values: [String: Value]

    public init(values: [String: Value]) {
        self.values = values
    }

    /// Reads `envFile` if it exists (a missing file is fine) and overlays `environment`.
    public static func load(
        envFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> EnvironmentSource {
        var values: [String: Value] = [:]
        if let envFile, FileManager.default.fileExists(atPath: envFile) {
            guard let data = FileManager.default.contents(atPath: envFile),
                let text = String(data: data, encoding: .utf8)
            else {
                throw ConfigurationError(variable: nil, message: "cannot read \(envFile) as UTF-8 text")
            }
            for (key, value) in try parseDotEnv(text, fileName: envFile) {
                values[key] = value
            }
        }
        for (key, value) in environment {
            values[key] = Value(text: value, origin: "environment")
        }
        return EnvironmentSource(values: values)
    }

    public subscript(key: String) -> Value? {
        values[key]
    }

    /// Every variable whose name starts with `prefix`, from `.env` and the environment alike,
    /// sorted (a family of settings such as `KAFKA_PROPERTY_<NAME>`).
    public func keys(withPrefix prefix: String) -> [String] {
        values.keys.filter { $0.hasPrefix(prefix) }.sorted()
    }

    static func parseDotEnv(_ text: String, fileName: String) throws -> [(String, Value)] {
        var result: [(String, Value)] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            let origin = "\(fileName):\(number + 1)"
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigurationError(variable: nil, message: "\(origin): expected KEY=value, got \"\(line)\"")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw ConfigurationError(variable: nil, message: "\(origin): \"\(key)\" is not a variable name")
            }
            let value = try unquote(line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces), origin: origin)
            result.append((key, Value(text: value, origin: origin)))
        }
        return result
    }

    private static func unquote(_ raw: String, origin: String) throws -> String {
        guard let first = raw.first, first == "\"" || first == "'" else {
            // Unquoted: an inline comment starts at " #".
            if let hash = raw.range(of: " #") { return String(raw[..<hash.lowerBound]).trimmingCharacters(in: .whitespaces) }
            return raw
        }
        var out = ""
        var index = raw.index(after: raw.startIndex)
        while index < raw.endIndex {
            let ch = raw[index]
            if ch == first {
                let rest = raw[raw.index(after: index)...].trimmingCharacters(in: .whitespaces)
                guard rest.isEmpty || rest.hasPrefix("#") else {
                    throw ConfigurationError(variable: nil, message: "\(origin): unexpected text after the closing quote")
                }
                return out
            }
            if first == "\"" && ch == "\\" {
                index = raw.index(after: index)
                guard index < raw.endIndex else { break }
                switch raw[index] {
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: out.append(raw[index])
                }
            } else {
                out.append(ch)
            }
            index = raw.index(after: index)
        }
        throw ConfigurationError(variable: nil, message: "\(origin): missing closing \(first)")
    }
}

/// A setting that stops start-up, with the variable it concerns.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let variable: String?
    public let message: String

    public var description: String {
        if let variable { return "configuration error: \(variable): \(message)" }
        return "configuration error: \(message)"
    }
}
