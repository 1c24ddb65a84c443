import Catalog
import Testing

@Suite("Control characters in identifiers")
struct ControlCharactersTests {
    @Test("C0, DEL and C1 controls are found, with the byte where they start", arguments: [
        ("nul\u{0}", "U+0000 at byte 3"),
        ("new\nline", "U+000A at byte 3"),
        ("\u{1B}[31m", "U+001B at byte 0"),
        ("del\u{7F}", "U+007F at byte 3"),
        ("é\u{85}", "U+0085 at byte 2"),  // é is 2 bytes; NEL is C2 85
        ("x\u{9F}", "U+009F at byte 1"),
    ])
    func found(text: String, expected: String) {
        #expect(ControlCharacters.first(in: text) == expected)
    }

    @Test("printable text passes, including characters whose UTF-8 starts like a C1 control", arguments: [
        "", "player-1", "q\"uote", "back\\slash", "emoji-🎮", "nbsp\u{A0}", "é", "\u{100}", "日本語", "'; DROP TABLE x; --",
    ])
    func passes(text: String) {
        #expect(ControlCharacters.first(in: text) == nil)
    }
}
