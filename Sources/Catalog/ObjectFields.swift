/// One JSON object of the catalog being read, with where it sits, so every problem about one of
/// its fields can name the challenge or goal and the field's dotted path.
struct ObjectFields {
    /// The challenge or goal the object belongs to, e.g. `goal "win-10" (challenge "weekly")`;
    /// empty for the top level.
    let location: String
    /// The object's dotted path inside that challenge or goal (`requirement`,
    /// `rotation.onExpiry`); empty for the challenge or goal object itself.
    let path: String
    /// The members by key; of a duplicated key, the first (the duplicate is reported).
    let values: [String: JSONValue]

    /// The dotted name of `key` in messages: `requirement.targetValue`.
    func name(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    /// A nested object's location and path.
    func nested(_ key: String, values: [String: JSONValue]) -> ObjectFields {
        ObjectFields(location: location, path: name(key), values: values)
    }
}

/// The shape every identifier has: non-empty, at most 100 UTF-8 bytes, because ids are stored in
/// VARCHAR(100) columns and a longer one would fail the whole flush batch it is in.
let maxIdentifierBytes = 100

/// Typed reads of fields, each reporting the problem (naming location and field) and returning
/// nil when the field is missing or wrong, so reading goes on and every problem gets reported.
/// A JSON `null` counts as absent for optional fields and as the wrong type for required ones.
extension CatalogLoader {
    /// Checks that `value` is an object whose keys are all in `allowed` (or `legacy`, which the
    /// caller warns about) and appear once; returns its fields.
    mutating func objectFields(
        _ value: JSONValue, location: String, path: String, allowed: [String], legacy: Set<String> = []
    ) -> ObjectFields? {
        let subject = path.isEmpty ? (location.isEmpty ? "the top level" : "it") : path
        guard case .object(let members) = value else {
            report(location, "\(subject) must be an object, got \(value.described)")
            return nil
        }
        var values: [String: JSONValue] = [:]
        for member in members {
            let dotted = path.isEmpty ? member.key : "\(path).\(member.key)"
            if values[member.key] != nil {
                report(location, "duplicate key \(quoted(dotted))")
                continue
            }
            values[member.key] = member.value
            if !allowed.contains(member.key) && !legacy.contains(member.key) {
                let within = path.isEmpty ? "" : " in \(path)"
                report(
                    location,
                    "unknown key \(quoted(dotted)) (known keys\(within): \(allowed.joined(separator: ", ")))")
            }
        }
        return ObjectFields(location: location, path: path, values: values)
    }

    /// The raw value of `key`; reports a missing required field.
    mutating func value(_ fields: ObjectFields, _ key: String, required: Bool) -> JSONValue? {
        guard let value = fields.values[key] else {
            if required { report(fields.location, "\(fields.name(key)) is required") }
            return nil
        }
        if value == .null && !required { return nil }
        return value
    }

    mutating func string(_ fields: ObjectFields, _ key: String, required: Bool = true) -> String? {
        guard let value = value(fields, key, required: required) else { return nil }
        guard case .string(let text) = value else {
            report(fields.location, "\(fields.name(key)) must be a string, got \(value.described)")
            return nil
        }
        return text
    }

    /// A string that is non-empty and at most `maxIdentifierBytes` UTF-8 bytes.
    mutating func identifier(_ fields: ObjectFields, _ key: String) -> String? {
        guard let text = string(fields, key) else { return nil }
        let name = fields.name(key)
        if text.isEmpty {
            report(fields.location, "\(name) must not be empty")
            return nil
        }
        let bytes = text.utf8.count
        if bytes > maxIdentifierBytes {
            report(
                fields.location,
                "\(name) must be at most \(maxIdentifierBytes) bytes (it is stored in a VARCHAR(\(maxIdentifierBytes)) column), got \(bytes) bytes")
            return nil
        }
        return text
    }

    mutating func bool(_ fields: ObjectFields, _ key: String, required: Bool = true) -> Bool? {
        guard let value = value(fields, key, required: required) else { return nil }
        guard case .bool(let flag) = value else {
            report(fields.location, "\(fields.name(key)) must be true or false, got \(value.described)")
            return nil
        }
        return flag
    }

    /// An integer literal in 1…2^31−1 (the INT columns and the wire's int32).
    mutating func positiveInt32(_ fields: ObjectFields, _ key: String) -> Int32? {
        guard let value = value(fields, key, required: true) else { return nil }
        let name = fields.name(key)
        guard case .number(let text) = value else {
            report(fields.location, "\(name) must be a number, got \(value.described)")
            return nil
        }
        guard !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else {
            report(fields.location, "\(name) must be a whole number, got \(text)")
            return nil
        }
        if text.hasPrefix("-") || text == "0" {
            report(fields.location, "\(name) must be > 0, got \(text)")
            return nil
        }
        guard let number = Int32(text) else {
            report(fields.location, "\(name) must be at most \(Int32.max) (a 32-bit integer), got \(text)")
            return nil
        }
        return number
    }

    /// A string that must be one of `choices`; `fallback` when absent and not required.
    mutating func choice<Choice: RawRepresentable<String>>(
        _ fields: ObjectFields, _ key: String, _ choices: [Choice], fallback: Choice? = nil
    ) -> Choice? {
        let present = fields.values[key].map { $0 != .null } ?? false
        guard let text = string(fields, key, required: fallback == nil) else {
            return present ? nil : fallback
        }
        if let match = choices.first(where: { $0.rawValue == text }) { return match }
        let options = choices.map { quoted($0.rawValue) }
        let list = options.count == 2 ? options.joined(separator: " or ") : options.joined(separator: ", ")
        report(fields.location, "\(fields.name(key)) must be \(options.count > 2 ? "one of " : "")\(list), got \(quoted(text))")
        return nil
    }

    /// A nested object with the given keys.
    mutating func object(_ fields: ObjectFields, _ key: String, allowed: [String], required: Bool = true) -> ObjectFields? {
        guard let value = value(fields, key, required: required) else { return nil }
        return objectFields(value, location: fields.location, path: fields.name(key), allowed: allowed)
    }

    mutating func array(_ fields: ObjectFields, _ key: String) -> [JSONValue]? {
        guard let value = value(fields, key, required: true) else { return nil }
        guard case .array(let elements) = value else {
            report(fields.location, "\(fields.name(key)) must be an array, got \(value.described)")
            return nil
        }
        return elements
    }
}

/// A fixed set of string choices that is not an enum of the public model (`operator`,
/// `reward.type`, `rotation.type`).
struct Literal: RawRepresentable, Equatable {
    let rawValue: String
    init(rawValue: String) { self.rawValue = rawValue }
}
