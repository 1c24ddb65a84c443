/// A parsed JSON value, as the catalog loader sees it.
///
/// Objects keep their members in document order, duplicates included, so the loader can report
/// duplicate keys (which `JSONSerialization` silently collapses) and list problems in the order a
/// reader meets them in the file. Numbers keep their literal text, so an integer field can tell
/// `10` from `10.0` and quote an out-of-range value exactly as written. Booleans are their own
/// case, so `true` is never mistaken for the number 1 (as `NSNumber` bridging can be).
enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's literal text, already checked against the JSON number grammar.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])

    /// The JSON type's name, for "must be a string, got number" messages.
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// The value for "got …" in messages: scalars with their type and text, containers by type.
    var described: String {
        switch self {
        case .null: "null"
        case .bool(let value): "boolean \(value)"
        case .number(let text): "number \(text)"
        case .string(let text): "string \(quoted(text))"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// One `"key": value` member of a JSON object.
struct JSONMember: Sendable, Equatable {
    let key: String
    let value: JSONValue
}

/// `text` in double quotes, shortened past 120 characters so a pasted blob cannot flood a message.
func quoted(_ text: String) -> String {
    let limit = 120
    // Control characters escaped as JSON writes them: a key or id from the file must not break
    // or forge a log line.
    let shown = ControlCharacters.first(in: text) == nil ? text : escapingControls(text)
    if shown.count <= limit { return "\"\(shown)\"" }
    return "\"\(shown.prefix(limit))…\""
}

private func escapingControls(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar.value {
        case 0x0A: out += "\\n"
        case 0x0D: out += "\\r"
        case 0x09: out += "\\t"
        case 0x00...0x1F, 0x7F...0x9F:
            let hex = String(scalar.value, radix: 16, uppercase: true)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
