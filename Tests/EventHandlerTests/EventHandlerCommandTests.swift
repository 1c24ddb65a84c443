import Testing

@testable import EventHandler

/// The command line, in process (the paths that stop before any setting is read; the others
/// are run as the real executable by the end-to-end and drop-in tests).
@Suite("Command line: usage and exit codes")
struct EventHandlerCommandTests {
    @Test("help prints the usage and exits 0; an unknown command exits 2")
    func usage() async {
        #expect(await EventHandlerCommand.run(["help"]) == 0)
        #expect(await EventHandlerCommand.run(["--help"]) == 0)
        #expect(await EventHandlerCommand.run(["serv"]) == 2)
    }
}
