/// One Redis command, its arguments already encoded as RESP bulk strings (binary-safe: an
/// argument may hold any byte), so a pipeline is the commands' bytes laid end to end: no
/// formatting in hiredis, no string built per argument.
public struct RedisCommand: Sendable, Equatable {
    /// `$<length>\r\n<bytes>\r\n` per argument, in order.
    private(set) var encodedArguments: [UInt8] = []
    public private(set) var argumentCount = 0

    public init(_ arguments: [String]) {
        for argument in arguments { append(argument) }
    }

    public init(_ arguments: String...) {
        self.init(arguments)
    }

    public mutating func append(_ argument: String) {
        var argument = argument
        argument.withUTF8 { append(bytes: $0) }
    }

    /// One argument made of `prefix` then `suffix` (a key: a namespace prefix and an id), without
    /// building the joined string.
    public mutating func append(_ prefix: String, _ suffix: String) {
        var prefix = prefix
        var suffix = suffix
        prefix.withUTF8 { head in
            suffix.withUTF8 { tail in
                beginArgument(length: head.count + tail.count)
                encodedArguments.append(contentsOf: head)
                encodedArguments.append(contentsOf: tail)
                encodedArguments.append(13)
                encodedArguments.append(10)
            }
        }
    }

    /// A decimal integer argument.
    public mutating func append(_ value: Int64) {
        var digits: [UInt8] = []
        var magnitude = value.magnitude
        repeat {
            digits.append(UInt8(truncatingIfNeeded: magnitude % 10) + 48)
            magnitude /= 10
        } while magnitude > 0
        if value < 0 { digits.append(45) }
        append(bytes: digits.reversed())
    }

    public mutating func append(bytes argument: some Collection<UInt8>) {
        beginArgument(length: argument.count)
        encodedArguments.append(contentsOf: argument)
        encodedArguments.append(13)
        encodedArguments.append(10)
    }

    private mutating func beginArgument(length: Int) {
        argumentCount += 1
        encodedArguments.append(36)  // $
        Self.appendDecimal(length, to: &encodedArguments)
        encodedArguments.append(13)
        encodedArguments.append(10)
    }

    /// The whole command in RESP (`*<count>\r\n` then the arguments), appended to `buffer`.
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(42)  // *
        Self.appendDecimal(argumentCount, to: &buffer)
        buffer.append(13)
        buffer.append(10)
        buffer.append(contentsOf: encodedArguments)
    }

    static func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
        precondition(value >= 0)
        if value < 10 {
            buffer.append(UInt8(value) + 48)
            return
        }
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            buffer.append(UInt8(rest / divisor) + 48)
            rest %= divisor
            divisor /= 10
        }
    }
}
