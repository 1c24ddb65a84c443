/// Builds a one-dimensional PostgreSQL array in the binary wire format (what `array_recv`
/// reads), for `PostgresParameter.binary`. Binary arrays spare the server the text parser and the
/// client all quoting; elements are appended straight into one byte buffer.
///
/// Layout: ndim (int4 = 1), has-nulls flag (int4 = 0), element type OID (int4), then for the
/// one dimension its length and lower bound (int4 each), then per element a length (int4) and
/// its bytes, all big-endian. No NULL elements.
public struct BinaryArray {
    public enum Element: Sendable {
        case text, int8, int4, bool

        var elementOID: UInt32 {
            switch self {
            case .text: 25
            case .int8: 20
            case .int4: 23
            case .bool: 16
            }
        }

        /// The OID of the array type (`text[]` and so on), for the parameter's type.
        public var arrayOID: UInt32 {
            switch self {
            case .text: 1009
            case .int8: 1016
            case .int4: 1007
            case .bool: 1000
            }
        }
    }

    public let element: Element
    private var bytes: [UInt8]
    private var count: Int32 = 0
    private static let countOffset = 12

    public init(_ element: Element, capacity: Int) {
        self.element = element
        bytes = []
        bytes.reserveCapacity(20 + capacity)
        append32(1)
        append32(0)
        append32(element.elementOID)
        append32(0)  // length, patched by `parameter`
        append32(1)  // lower bound
    }

    public mutating func append(text utf8: some Collection<UInt8>) {
        append32(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
        count += 1
    }

    public mutating func append(_ string: String) {
        append(text: string.utf8)
    }

    public mutating func append(int8 value: Int64) {
        append32(4 + 4)
        let v = UInt64(bitPattern: value)
        append32(UInt32(truncatingIfNeeded: v >> 32))
        append32(UInt32(truncatingIfNeeded: v))
        count += 1
    }

    public mutating func append(int4 value: Int32) {
        append32(4)
        append32(UInt32(bitPattern: value))
        count += 1
    }

    public mutating func append(bool value: Bool) {
        append32(1)
        bytes.append(value ? 1 : 0)
        count += 1
    }

    public var elementCount: Int { Int(count) }

    /// The finished array as a query parameter.
    public func parameter() -> PostgresParameter {
        var out = bytes
        if count == 0 {
            // An empty array has no dimensions.
            out = [0, 0, 0, 0, 0, 0, 0, 0] + Self.bigEndian(element.elementOID)
        } else {
            let c = Self.bigEndian(UInt32(bitPattern: count))
            out.replaceSubrange(Self.countOffset..<Self.countOffset + 4, with: c)
        }
        return .binary(out, oid: element.arrayOID)
    }

    private mutating func append32(_ value: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }
}
