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
    if text.count <= limit { return "\"\(text)\"" }
    return "\"\(text.prefix(limit))…\""
}
