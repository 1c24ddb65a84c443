/// Control characters (Unicode's category Cc: U+0000–U+001F and U+007F–U+009F) in an
/// identifier. None belongs in a user id, an event id or a goal id: PostgreSQL text cannot hold a
/// NUL (the row would fail its flush), and the others reach log lines and terminals raw (a
/// newline forges a log line, an escape sequence recolours a terminal).
public enum ControlCharacters {
    /// The first control character in `text`, as `U+000A at byte 5`; nil when there is none.
    /// One pass over the UTF-8 bytes: C0 and DEL are single bytes, C1 is `C2 80`…`C2 9F`.
    public static func first(in text: String) -> String? {
        var offset = 0
        var previous: UInt8 = 0
        for byte in text.utf8 {
            if byte < 0x20 || byte == 0x7F {
                return "\(scalar(byte)) at byte \(offset)"
            }
            if previous == 0xC2 && byte >= 0x80 && byte <= 0x9F {
                return "\(scalar(byte)) at byte \(offset - 1)"
            }
            previous = byte
            offset += 1
        }
        return nil
    }

    /// The refusal for a field holding one: `must not contain control characters (U+000A at byte 5)`.
    public static func refusal(in text: String) -> String? {
        first(in: text).map { "must not contain control characters (\($0))" }
    }

    private static func scalar(_ value: UInt8) -> String {
        let hex = String(value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
