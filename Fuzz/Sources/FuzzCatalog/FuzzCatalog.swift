import Catalog

/// challenges.json bytes → `Catalog.parse`. Beyond not crashing: an accepted catalog keeps the
/// invariants `Goal` documents (ids of 1…100 bytes without control characters, unique, indexed;
/// statCode exactly on statistic goals; prerequisites naming other goals of the file), and every
/// message, accepted or refused, is one line starting with the file name, without raw control
/// characters (keys and values from the file are escaped when quoted).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCatalog(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let loaded = try Catalog.parse(bytes, fileName: "fuzz.json")
        check(loaded.catalog)
        for warning in loaded.warnings { checkMessage(warning) }
    } catch {
        require(error.file == "fuzz.json" && !error.problems.isEmpty, "a refusal names its file and a problem")
        for problem in error.problems { checkMessage(problem) }
    }
    return 0
}

private func check(_ catalog: Catalog) {
    let ids = Set(catalog.goals.map(\.goalId))
    require(ids.count == catalog.goals.count, "goal ids are unique")
    for (position, goal) in catalog.goals.enumerated() {
        require(Int(goal.index) == position, "goal \(position) has index \(goal.index)")
        require(catalog.goal(id: goal.goalId)?.index == goal.index, "goal(id:) finds \(goal.index)")
        for id in [goal.goalId, goal.challengeId, goal.reward.rewardId] {
            require((1...100).contains(id.utf8.count), "an id of \(id.utf8.count) bytes")
            require(ControlCharacters.first(in: id) == nil, "an id with a control character: \(id.debugDescription)")
        }
        require(goal.targetValue > 0 && goal.reward.quantity > 0, "target and quantity are positive")
        switch goal.eventSource {
        case .login:
            require(goal.statCode == nil && catalog.loginGoals.contains(goal.index), "a login goal")
        case .statistic:
            guard let statCode = goal.statCode else { fail("a statistic goal without statCode") }
            require((1...100).contains(statCode.utf8.count), "statCode of \(statCode.utf8.count) bytes")
            require(catalog.goals(forStatCode: statCode).contains(goal.index), "the stat index holds goal \(goal.index)")
        }
        if goal.rotation?.enabled == true { require(goal.progressMode == .relative, "an enabled rotation on an absolute goal") }
        for prerequisite in goal.prerequisites {
            require(prerequisite != goal.goalId && ids.contains(prerequisite), "prerequisite \(prerequisite.debugDescription)")
        }
    }
}

private func checkMessage(_ message: String) {
    require(message.hasPrefix("fuzz.json"), "a message without the file name: \(message.debugDescription)")
    require(ControlCharacters.first(in: message) == nil, "a raw control character in \(message.debugDescription)")
}

private func require(_ condition: Bool, _ property: @autoclosure () -> String) {
    if !condition { fail(property()) }
}

private func fail(_ property: String) -> Never {
    fatalError("fuzz-catalog: property violated: \(property)")
}
