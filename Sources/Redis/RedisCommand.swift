/// One Redis command, its arguments laid end to end in one buffer (binary-safe: an argument may
/// hold any byte), ready for `redisAppendCommandArgv`.
public struct RedisCommand: Sendable, Equatable {
    var bytes: [UInt8] = []
    var lengths: [Int] = []

    public init(_ arguments: [String]) {
        for argument in arguments { append(argument) }
    }

    public init(_ arguments: String...) {
        self.init(arguments)
    }

    public mutating func append(_ argument: String) {
        bytes.append(contentsOf: argument.utf8)
        lengths.append(argument.utf8.count)
    }

    public mutating func append(bytes argument: some Collection<UInt8>) {
        bytes.append(contentsOf: argument)
        lengths.append(argument.count)
    }

    public var argumentCount: Int { lengths.count }
}
