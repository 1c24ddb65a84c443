/// `grpc-timeout`: at most eight ASCII digits and a unit (H, M, S, m, u, n), as the client's
/// remaining time for the call (gRPC over HTTP/2, "Requests").
public enum GRPCTimeout {
    /// The timeout in nanoseconds, or nil when the value is not of that form. Saturates rather
    /// than overflowing (99,999,999 hours fit in an Int64 of nanoseconds only just not).
    public static func nanoseconds(_ value: Substring.UTF8View) -> Int64? {
        guard value.count >= 2, value.count <= 9 else { return nil }
        var amount: Int64 = 0
        for byte in value.dropLast() {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        let unit: Int64
        switch value.last! {
        case UInt8(ascii: "H"): unit = 3_600_000_000_000
        case UInt8(ascii: "M"): unit = 60_000_000_000
        case UInt8(ascii: "S"): unit = 1_000_000_000
        case UInt8(ascii: "m"): unit = 1_000_000
        case UInt8(ascii: "u"): unit = 1_000
        case UInt8(ascii: "n"): unit = 1
        default: return nil
        }
        let (product, overflow) = amount.multipliedReportingOverflow(by: unit)
        return overflow ? Int64.max : product
    }

    public static func nanoseconds(_ value: String) -> Int64? {
        nanoseconds(Substring(value).utf8)
    }
}
