import Catalog
import Foundation
import Testing

/// The shipped configuration files, and reading files from disk.
@Suite("Sample and legacy files")
struct SampleFileTests {
    let root = Fixture.packageRoot()

    @Test func sampleFileLoadsWithoutWarnings() throws {
        let path = "\(root)/config/challenges.json"
        let loaded = try Catalog.load(path: path)
        let catalog = loaded.catalog
        #expect(loaded.warnings.isEmpty)
        #expect(Set(catalog.goals.map(\.challengeId)) == ["daily-login", "combat", "progression"])
        #expect((8...12).contains(catalog.goals.count))
        for (position, goal) in catalog.goals.enumerated() { #expect(goal.index == Int32(position)) }

        // A mix of sources, assignment modes, rewards. (Relative goals and rotation are refused by
        // this release of the service, so the sample it starts with has none.)
        #expect(catalog.loginGoals.map { catalog.goals[Int($0)].goalId } == ["login-first", "login-7", "login-30"])
        #expect(catalog.goals(forStatCode: "kills").map { catalog.goals[Int($0)].goalId } == ["kills-10", "kills-500"])
        #expect(catalog.goals.contains { !$0.defaultAssigned } && catalog.goals.contains { $0.defaultAssigned })
        #expect(Set(catalog.goals.map(\.reward.type)) == ["ITEM", "WALLET"])
        let wins = try #require(catalog.goal(id: "wins-3"))
        #expect(wins.progressMode == .absolute)
        #expect(wins.statCode == "matches-won")
        #expect(catalog.goals.allSatisfy { $0.progressMode == .absolute && $0.rotation == nil })
        #expect(catalog.goal(id: "level-50")?.prerequisites == ["level-10", "kills-500"])
        #expect(catalog.goal(id: "login-7")?.statCode == nil)
    }

    @Test func legacyFileLoadsWithWarningsNamingTheLegacyKeys() throws {
        let path = "\(root)/config/challenges.legacy.json"
        let loaded = try Catalog.load(path: path)
        #expect(loaded.catalog.goals.count == 10)
        #expect(loaded.warnings.count == 2)
        let type = try #require(loaded.warnings.first { $0.contains("\"type\"") })
        let daily = try #require(loaded.warnings.first { $0.contains("\"daily\"") })
        for warning in [type, daily] {
            #expect(warning.hasPrefix("\(path): legacy goal key"))
            #expect(warning.contains("goal \"login-first\" (challenge \"daily-login\")"))
            #expect(warning.contains("and 0 more") == false)
        }
        // Both files describe the same goals.
        let current = try Catalog.load(path: "\(root)/config/challenges.json").catalog
        #expect(loaded.catalog.goals.map(\.goalId) == current.goals.map(\.goalId))
    }

    @Test func legacyKeysOnOneGoalAreNamedWithThatGoal() throws {
        let document = Fixture.document
            .setting("\(Fixture.g2).type", to: "increment")
            .setting("\(Fixture.g2).daily", to: true)
        let loaded = try Catalog.parse(document.bytes, fileName: "old.json")
        #expect(loaded.warnings == [
            "old.json: legacy goal key \"type\" is ignored (progress follows eventSource and requirement.progressMode); found on goal \"g2\" (challenge \"c1\")",
            "old.json: legacy goal key \"daily\" is ignored (for a daily goal use progressMode \"relative\" with a daily rotation); found on goal \"g2\" (challenge \"c1\")",
        ])
    }

    @Test func missingFileIsAnErrorNamingIt() {
        let path = "\(root)/config/does-not-exist.json"
        let error = #expect(throws: CatalogError.self) { try Catalog.load(path: path) }
        #expect(error?.file == path)
        #expect(error?.problems == ["\(path): cannot read the file: no such file"])
    }

    @Test func directoryIsAnErrorNamingIt() {
        let path = "\(root)/config"
        let error = #expect(throws: CatalogError.self) { try Catalog.load(path: path) }
        #expect(error?.problems.count == 1)
        #expect(error?.description.hasPrefix("\(path): cannot read the file") == true)
    }

    @Test func invalidJSONIsAnErrorNamingTheFileAndPosition() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("catalog-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("challenges.json")
        try Data("{\n  \"challenges\": [\n    {\"challengeId\": \"a\",}\n  ]\n}\n".utf8).write(to: file)

        let error = #expect(throws: CatalogError.self) { try Catalog.load(path: file.path) }
        #expect(error?.file == file.path)
        #expect(error?.problems == ["\(file.path): invalid JSON at line 3, column 25: expected a quoted key"])
    }

    @Test func dataAndBytesParseTheSame() throws {
        let fromData = try Catalog.parse(Data(Fixture.document.text.utf8), fileName: "a.json").catalog
        let fromBytes = try Catalog.parse(Fixture.document.bytes, fileName: "a.json").catalog
        #expect(fromData.goals == fromBytes.goals)
    }
}
