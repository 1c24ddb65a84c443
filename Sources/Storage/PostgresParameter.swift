/// One statement parameter, bound without quoting or escaping.
public enum PostgresParameter: Sendable {
    case null
    /// Text format; the server parses it as the parameter's type.
    case text(String)
    /// Binary wire format, with the value's type OID (e.g. 23 for int4, or `BinaryArray.parameter()`).
    case binary([UInt8], oid: UInt32)
}
