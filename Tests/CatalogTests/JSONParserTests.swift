import Catalog
import Foundation
import Testing

/// The document's syntax: errors name the file, line and column; accepted JSON corner cases.
@Suite("JSON syntax")
struct JSONParserTests {
    struct SyntaxCase: Sendable, CustomTestStringConvertible {
        let text: String
        let expected: String
        var testDescription: String { expected }
    }

    static let syntaxErrors: [SyntaxCase] = [
        SyntaxCase(text: "", expected: "invalid JSON at line 1, column 1: the file is empty; expected a JSON object"),
        SyntaxCase(text: "  \n ", expected: "invalid JSON at line 2, column 2: the file is empty; expected a JSON object"),
        SyntaxCase(text: "{\"challenges\": []", expected: "invalid JSON at line 1, column 18: expected ',' or '}' after the value of \"challenges\""),
        SyntaxCase(text: "{\"challenges\": [1,]}", expected: "invalid JSON at line 1, column 19: unexpected character ']'; expected a value"),
        SyntaxCase(text: "{\"a\" 1}", expected: "invalid JSON at line 1, column 6: expected ':' after key \"a\""),
        SyntaxCase(text: "{}\n{}", expected: "invalid JSON at line 2, column 1: unexpected content after the top-level value"),
        SyntaxCase(text: "{\"a\": tru}", expected: "invalid JSON at line 1, column 10: invalid literal; expected true"),
        SyntaxCase(text: "{\"a\": 01}", expected: "invalid JSON at line 1, column 8: numbers may not have leading zeros"),
        SyntaxCase(text: "{\"a\": 1.}", expected: "invalid JSON at line 1, column 9: expected a digit after '.'"),
        SyntaxCase(text: "{\"a\": \"x\ny\"}", expected: "invalid JSON at line 1, column 9: control character 0xA inside a string (escape it)"),
        SyntaxCase(text: "{\"a\": \"\\q\"}", expected: "invalid JSON at line 1, column 10: invalid escape \\'q'"),
        SyntaxCase(text: "{\"a\": \"\\ud800\"}", expected: "invalid JSON at line 1, column 14: high surrogate \\ud800 without a low surrogate"),
        SyntaxCase(text: "// comment\n{}", expected: "invalid JSON at line 1, column 1: unexpected character '/'; expected a value"),
        SyntaxCase(text: "{\"a\": \"unterminated", expected: "invalid JSON at line 1, column 20: unterminated string"),
        SyntaxCase(
            text: String(repeating: "[", count: 100),
            expected: "invalid JSON at line 1, column 65: nesting deeper than 64 levels"),
    ]

    @Test(arguments: syntaxErrors)
    func syntaxErrorNamesFileLineAndColumn(_ syntax: SyntaxCase) {
        let error = #expect(throws: CatalogError.self) { try Catalog.parse(Array(syntax.text.utf8), fileName: "bad.json") }
        #expect(error?.file == "bad.json")
        #expect(error?.problems == ["bad.json: \(syntax.expected)"])
    }

    @Test func invalidUTF8IsRefused() {
        var bytes = Array("{\"challenges\": [\"".utf8)
        bytes += [0xFF, 0xFE]
        bytes += Array("\"]}".utf8)
        let error = #expect(throws: CatalogError.self) { try Catalog.parse(bytes, fileName: "bad.json") }
        #expect(error?.problems == ["bad.json: invalid JSON at line 1, column 17: string is not valid UTF-8"])
    }

    @Test func byteOrderMarkEscapesAndUnicodeAreAccepted() throws {
        let document = Fixture.document
            .setting("\(Fixture.g1).name", to: "Ten \"kills\" \\ 🎯 ünïcödé")
            .setting("\(Fixture.g1).requirement.statCode", to: "k\u{1}lls")
        let text = document.text.replacingOccurrences(of: "🎯", with: "\\ud83c\\udfaf")
        let loaded = try Catalog.parse([0xEF, 0xBB, 0xBF] + Array(text.utf8), fileName: Fixture.fileName)
        let goal = loaded.catalog.goals[0]
        #expect(goal.name == "Ten \"kills\" \\ 🎯 ünïcödé")
        #expect(goal.statCode == "k\u{1}lls")
        #expect(loaded.catalog.goals(forStatCode: "k\u{1}lls") == [0])
    }

    @Test func whitespaceAndNegativeZeroAreHandled() {
        let text = " \t\r\n" + Fixture.document.setting("\(Fixture.g1).requirement.targetValue", to: .number("-0")).text + "\n\n"
        let error = #expect(throws: CatalogError.self) { try Catalog.parse(Array(text.utf8), fileName: "z.json") }
        #expect(error?.problems == ["z.json: goal \"g1\" (challenge \"c1\"): requirement.targetValue must be > 0, got -0"])
    }
}
