/// A JSON document written in Swift literals, for building catalog files in tests. Objects keep
/// their key order and may repeat keys, so tests can write exactly the text they mean.
enum TestJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number as it appears in the file (`10`, `1.5`, `2147483648`).
    case number(String)
    case string(String)
    case array([TestJSON])
    case object([Member])

    struct Member: Sendable, Equatable {
        var key: String
        var value: TestJSON
    }

    /// The document as JSON text.
    var text: String {
        switch self {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .number(let literal): literal
        case .string(let string): Self.encode(string)
        case .array(let elements): "[" + elements.map(\.text).joined(separator: ", ") + "]"
        case .object(let members): "{" + members.map { "\(Self.encode($0.key)): \($0.value.text)" }.joined(separator: ", ") + "}"
        }
    }

    var bytes: [UInt8] { Array(text.utf8) }

    /// A copy with the value at `path` (dot-separated keys and array positions, e.g.
    /// `challenges.0.goals.0.requirement.targetValue`) replaced, added at the end of its object
    /// or array when absent (an array position may be one past the end), or removed when `value`
    /// is nil.
    func setting(_ path: String, to value: TestJSON?) -> TestJSON {
        setting(path.split(separator: ".").map(String.init)[...], to: value)
    }

    private func setting(_ path: ArraySlice<String>, to value: TestJSON?) -> TestJSON {
        guard let head = path.first else { return value ?? .null }
        let rest = path.dropFirst()
        switch self {
        case .object(var members):
            if let position = members.firstIndex(where: { $0.key == head }) {
                if rest.isEmpty && value == nil {
                    members.remove(at: position)
                } else {
                    members[position].value = members[position].value.setting(rest, to: value)
                }
            } else if let value {
                precondition(rest.isEmpty, "no key \(head) to descend into")
                members.append(Member(key: head, value: value))
            }
            return .object(members)
        case .array(var elements):
            if let position = Int(head), position == elements.count, rest.isEmpty, let value {
                elements.append(value)
                return .array(elements)
            }
            guard let position = Int(head), elements.indices.contains(position) else {
                preconditionFailure("no element \(head)")
            }
            if rest.isEmpty && value == nil {
                elements.remove(at: position)
            } else {
                elements[position] = elements[position].setting(rest, to: value)
            }
            return .array(elements)
        default:
            preconditionFailure("cannot descend into \(self) at \(head)")
        }
    }

    /// A copy with the key at `path` (as for `setting`) renamed to `key` where it stands, so a
    /// test can write a known key in another case without moving it.
    func renaming(_ path: String, to key: String) -> TestJSON {
        renaming(path.split(separator: ".").map(String.init)[...], to: key)
    }

    private func renaming(_ path: ArraySlice<String>, to key: String) -> TestJSON {
        guard let head = path.first else { preconditionFailure("no key to rename") }
        let rest = path.dropFirst()
        switch self {
        case .object(var members):
            guard let position = members.firstIndex(where: { $0.key == head }) else {
                preconditionFailure("no key \(head)")
            }
            if rest.isEmpty {
                members[position].key = key
            } else {
                members[position].value = members[position].value.renaming(rest, to: key)
            }
            return .object(members)
        case .array(var elements):
            guard let position = Int(head), elements.indices.contains(position), !rest.isEmpty else {
                preconditionFailure("no keyed element \(head)")
            }
            elements[position] = elements[position].renaming(rest, to: key)
            return .array(elements)
        default:
            preconditionFailure("cannot descend into \(self) at \(head)")
        }
    }

    private static func encode(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension TestJSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .number(String(value)) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: TestJSON...) { self = .array(elements) }
    init(dictionaryLiteral elements: (String, TestJSON)...) { self = .object(elements.map { Member(key: $0.0, value: $0.1) }) }
    init(nilLiteral: ()) { self = .null }
}

/// Shared documents.
enum Fixture {
    /// Where `g1` sits in `document`; edits in the rule tables are relative to it.
    static let g1 = "challenges.0.goals.0"
    static let g2 = "challenges.0.goals.1"
    static let fileName = "test.json"

    /// A valid document: challenge `c1` with the statistic goal `g1` (stat `kills`, target 10)
    /// and the login goal `g2` (target 3); no prerequisites.
    static let document: TestJSON = [
        "challenges": [
            [
                "challengeId": "c1",
                "name": "Challenge one",
                "goals": [
                    [
                        "goalId": "g1",
                        "name": "Ten kills",
                        "eventSource": "statistic",
                        "defaultAssigned": true,
                        "requirement": ["statCode": "kills", "operator": ">=", "targetValue": 10],
                        "reward": ["type": "ITEM", "rewardId": "sword", "quantity": 1],
                        "prerequisites": [],
                    ],
                    [
                        "goalId": "g2",
                        "name": "Three logins",
                        "eventSource": "login",
                        "defaultAssigned": false,
                        "requirement": ["operator": ">=", "targetValue": 3],
                        "reward": ["type": "WALLET", "rewardId": "GOLD", "quantity": 5],
                        "prerequisites": [],
                    ],
                ],
            ]
        ]
    ]

    /// A valid daily rotation block.
    static let rotation: TestJSON = [
        "enabled": true, "type": "global", "schedule": "daily",
        "onExpiry": ["resetProgress": true, "allowReselection": false],
    ]

    /// A goal object with the given id, for documents with more goals.
    static func statGoal(_ id: String, statCode: String, prerequisites: TestJSON = []) -> TestJSON {
        [
            "goalId": .string(id), "name": .string("Goal \(id)"), "eventSource": "statistic", "defaultAssigned": true,
            "requirement": ["statCode": .string(statCode), "operator": ">=", "targetValue": 5],
            "reward": ["type": "ITEM", "rewardId": "item", "quantity": 1], "prerequisites": prerequisites,
        ]
    }

    /// The package root, found from this file's path (Tests/CatalogTests/TestJSON.swift).
    static func packageRoot(file: String = #filePath) -> String {
        var parts = file.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }
}
