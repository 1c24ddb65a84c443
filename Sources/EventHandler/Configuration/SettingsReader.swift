import Foundation

/// Typed reads of one variable each; every failure names the variable, the value and its origin.
struct SettingsReader {
    let source: EnvironmentSource

    func string(_ key: String) throws -> String? {
        guard let value = source[key] else { return nil }
        return value.text.isEmpty ? nil : value.text
    }

    /// The contents of the file a `…_FILE` variable names (a secret mounted by compose or
    /// Kubernetes), without its trailing newlines; unset: nil. An unreadable file stops start-up.
    func file(_ key: String) throws -> String? {
        guard let path = try string(key) else { return nil }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(variable: key, message: "cannot read \(path)")
        }
        return text.trimmingCharacters(in: .newlines)
    }

    func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = source[key], !value.text.isEmpty else { return nil }
        guard let number = Int(value.text.trimmingCharacters(in: .whitespaces)), range.contains(number) else {
            throw ConfigurationError(variable: key, message: "must be a whole number in \(range.lowerBound)...\(range.upperBound), got \"\(value.text)\" (from \(value.origin))")
        }
        return number
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = source[key], !value.text.isEmpty else { return nil }
        switch value.text.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default:
            throw ConfigurationError(variable: key, message: "must be true or false, got \"\(value.text)\" (from \(value.origin))")
        }
    }

    /// A duration where `0` (or `off`) turns the limit off; unset keeps `default`.
    func optionalDuration(_ key: String, default value: Duration?) throws -> Duration? {
        guard let raw = source[key], !raw.text.isEmpty else { return value }
        if ["0", "off"].contains(raw.text.lowercased()) { return nil }
        return try duration(key, positive: true)
    }

    func duration(_ key: String, positive: Bool) throws -> Duration? {
        guard let value = source[key], !value.text.isEmpty else { return nil }
        guard let duration = parseDuration(value.text), !positive || duration > .zero else {
            throw ConfigurationError(
                variable: key,
                message: "must be a \(positive ? "positive " : "")duration such as 500ms, 1s, 30m or 1h30m, at most 8784h (a year), got \"\(value.text)\" (from \(value.origin))")
        }
        return duration
    }
}
