import EventHandler
import Foundation

// `event-handler`: everything it does is in the EventHandler library (`EventHandlerCommand`),
// where the tests reach it too.
exit(await EventHandlerCommand.run(Array(CommandLine.arguments.dropFirst())))
