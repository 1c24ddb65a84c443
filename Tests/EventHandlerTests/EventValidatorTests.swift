import EventRules
import Testing

/// The wire contract's checks, in process: control characters in user ids and event ids are bad
/// input naming the field, on every kind of event and on a GDPR deletion.
@Suite("Event validation: control characters")
struct EventValidatorTests {
    static let controls = ["nul\u{0}", "new\nline", "cr\rlf", "esc\u{1B}[31m", "del\u{7F}", "nel\u{85}"]

    static func login(id: String = "e-1", user: String = "player-1") -> IncomingEvent {
        .login(.init(id: id, namespace: "ns", userID: user))
    }

    static func stat(id: String = "e-1", user: String = "player-1") -> IncomingEvent {
        .stat(.init(id: id, namespace: "ns", userID: user, payload: .init(statCode: "kills", latestValue: 3, inc: 1)))
    }

    @Test("in a user id: INVALID_ARGUMENT on user_id, naming the character", arguments: controls)
    func inUserID(_ control: String) {
        for event in [Self.login(user: "p-" + control), Self.stat(user: "p-" + control)] {
            guard case .invalid(let field, let reason) = EventValidator.check(event, namespace: "ns") else {
                Issue.record("\(control.debugDescription) in user_id accepted")
                continue
            }
            #expect(field == .userID)
            #expect(reason == "must not contain control characters (\(ControlCharactersProbe.first(in: "p-" + control)))", "\(reason)")
        }
        guard case .invalid(.userID, _) = UserDeletionRequest(userID: "p-" + control, namespace: "ns").check(namespace: "ns") else {
            Issue.record("\(control.debugDescription) in a deletion's user_id accepted")
            return
        }
    }

    @Test("in an event id: INVALID_ARGUMENT on id", arguments: controls)
    func inEventID(_ control: String) {
        for event in [Self.login(id: "e-" + control), Self.stat(id: "e-" + control)] {
            #expect(
                EventValidator.check(event, namespace: "ns")
                    == .invalid(field: .id, reason: "must not contain control characters (\(ControlCharactersProbe.first(in: "e-" + control)))"))
        }
    }

    @Test("printable ids at the edges stay valid, and another namespace wins over a bad field")
    func edges() {
        for id in ["q\"uote", "back\\slash", "emoji-🎮", "nbsp\u{A0}id", "'; DROP TABLE x; --", ""] {
            #expect(EventValidator.check(Self.stat(id: id, user: "u-" + id.prefix(10)), namespace: "ns") == .valid, "\(id)")
        }
        #expect(EventValidator.check(Self.login(user: "p\n1"), namespace: "other") == .otherNamespace)
    }
}

/// The expected position text, computed independently of `ControlCharacters`: the first scalar
/// in category Cc and its UTF-8 byte offset.
private enum ControlCharactersProbe {
    static func first(in text: String) -> String {
        var offset = 0
        for scalar in text.unicodeScalars {
            if scalar.properties.generalCategory == .control {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                return "U+" + String(repeating: "0", count: 4 - hex.count) + hex + " at byte \(offset)"
            }
            offset += String(scalar).utf8.count
        }
        return "none"
    }
}
