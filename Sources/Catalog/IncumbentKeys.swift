/// How the incumbent handler (Go, `encoding/json` into structs) matches a JSON object's keys to
/// its fields, so the loader can tell a key both services read the same way from one they would
/// read differently, and both of those from a key both ignore.
enum IncumbentKeys {
    /// The field among `fields` the incumbent reads `key` into: the one spelled exactly like it,
    /// else the one equal to it under case folding; nil when none (the incumbent ignores the key).
    static func field(for key: String, among fields: [String]) -> String? {
        // Byte for byte, as Go compares: Swift's `==` would also equate canonically equivalent
        // spellings, which Go tells apart.
        if let exact = fields.first(where: { $0.utf8.elementsEqual(key.utf8) }) { return exact }
        let folded = fold(key)
        return fields.first { fold($0) == folded }
    }

    /// Whether `key` is spelled exactly as `field`.
    static func isExact(_ key: String, _ field: String) -> Bool {
        key.utf8.elementsEqual(field.utf8)
    }

    /// `text` with each letter replaced by the representative of its case class under Unicode
    /// simple folding, as Go's decoder compares names. Only letters that fold to ASCII ones are
    /// replaced: the fields are ASCII, so no other letter can make a key equal to one. Besides
    /// ASCII letters, those are the Kelvin sign (a k) and the long s (an s).
    static func fold(_ text: String) -> [Unicode.Scalar] {
        text.unicodeScalars.map { scalar in
            switch scalar {
            case "a"..."z": Unicode.Scalar(UInt8(scalar.value) - 0x20)
            case "\u{212A}": "K"
            case "\u{017F}": "S"
            default: scalar
            }
        }
    }
}
