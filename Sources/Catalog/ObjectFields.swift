/// One JSON object of the catalog being read, with where it sits, so every problem about one of
/// its fields can name the challenge or goal and the field's dotted path.
struct ObjectFields {
    /// The challenge or goal the object belongs to, e.g. `goal "win-10" (challenge "weekly")`;
    /// empty for the top level.
    let location: String
    /// The object's dotted path inside that challenge or goal (`requirement`,
    /// `rotation.onExpiry`); empty for the challenge or goal object itself.
    let path: String
    /// The members by known key, as the incumbent matches keys to fields (a case variant under
    /// the key it stands for); of a repeated key, the first (the repeat is reported). Unknown
    /// keys are left out: neither service reads them.
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
    /// Checks that `value` is an object and reads its members as the incumbent's decoder matches
    /// them to fields, so a file it runs with starts this service too, and one the two would read
    /// differently is refused rather than read another way:
    /// - a key neither knows (not in `allowed`, nor in `legacy`, which the caller warns about) is
    ///   ignored by both: a warning per occurrence;
    /// - a case variant of a known key (`GoalId`) is the known key to the incumbent and not to
    ///   this service: a problem (its value is still read under the known key, so the rest of
    ///   the object is checked as the incumbent would see it);
    /// - a known key given again, in any case, is a field the incumbent sets twice, keeping the
    ///   last value: a problem (the first value is read, for the other checks).
    mutating func objectFields(
        _ value: JSONValue, location: String, path: String, allowed: [String], legacy: Set<String> = []
    ) -> ObjectFields? {
        let subject = path.isEmpty ? (location.isEmpty ? "the top level" : "it") : path
        guard case .object(let members) = value else {
            report(location, "\(subject) must be an object, got \(value.described)")
            return nil
        }
        let known = allowed + legacy.sorted()
        func dotted(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
        var values: [String: JSONValue] = [:]
        // Per field read, the key that set it, as written.
        var setBy: [String: String] = [:]
        for member in members {
            guard let field = IncumbentKeys.field(for: member.key, among: known) else {
                warn(location, "unknown key \(quoted(dotted(member.key))) ignored (the incumbent ignores it too)")
                continue
            }
            if let first = setBy[field] {
                reportRepeated(
                    location, key: dotted(member.key), field: dotted(field), first: dotted(first), writtenAs: field)
                continue
            }
            setBy[field] = member.key
            values[field] = member.value
            if !IncumbentKeys.isExact(member.key, field) {
                report(
                    location,
                    "key \(quoted(dotted(member.key))): the incumbent reads it as \(quoted(dotted(field))), this service would not; write it as \(quoted(field))"
                )
            }
        }
        return ObjectFields(location: location, path: path, values: values)
    }

    /// A second key for a field already set by `first`: the incumbent would keep the last value,
    /// which one to keep is for the file's author to say.
    private mutating func reportRepeated(
        _ location: String, key: String, field: String, first: String, writtenAs: String
    ) {
        guard IncumbentKeys.isExact(key, first) else {
            report(
                location,
                "duplicate key \(quoted(key)): the incumbent reads it as \(quoted(field)), like \(quoted(first)) before it, and would take the last one; keep one, written as \(quoted(writtenAs))"
            )
            return
        }
        report(location, "duplicate key \(quoted(key)): the incumbent would take the last one; keep one")
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

    /// A non-empty string of at most `maxIdentifierBytes`; with `refusingControls`, one without
    /// control characters (ids are stored and logged; a stat code is only compared with events').
    mutating func identifier(_ fields: ObjectFields, _ key: String, refusingControls: Bool = true) -> String? {
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
        // A NUL would fail every write of the goal; other control characters reach logs raw.
        if refusingControls, let refusal = ControlCharacters.refusal(in: text) {
            report(fields.location, "\(name) \(refusal)")
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
