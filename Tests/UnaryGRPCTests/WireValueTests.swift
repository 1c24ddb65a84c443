import Testing
import UnaryGRPC

/// The two wire values the server writes or reads by hand: `grpc-message` and `grpc-timeout`.
@Suite("gRPC wire values")
struct WireValueTests {
    @Test(
        "grpc-message: printable ASCII as is, % and every other byte percent-encoded",
        arguments: [
            ("user_id: must not be empty", "user_id: must not be empty"),
            ("100% full", "100%25 full"),
            ("line\nbreak", "line%0Abreak"),
            ("café", "caf%C3%A9"),
            ("tab\there", "tab%09here"),
            ("", ""),
        ])
    func messageEncoding(message: String, encoded: String) {
        #expect(GRPCStatus(.internal, message).encodedMessage == encoded)
    }

    @Test(
        "grpc-timeout: up to 8 digits and a unit, in nanoseconds",
        arguments: [
            ("1n", Int64(1)), ("5u", 5_000), ("50m", 50_000_000), ("2S", 2_000_000_000),
            ("1M", 60_000_000_000), ("1H", 3_600_000_000_000), ("99999999H", Int64.max),
        ])
    func timeouts(value: String, nanoseconds: Int64) {
        #expect(GRPCTimeout.nanoseconds(value) == nanoseconds)
    }

    @Test("malformed grpc-timeout values are refused", arguments: ["", "S", "10", "10s", "123456789S", "1.5S", "-1S", " 1S"])
    func malformedTimeouts(value: String) {
        #expect(GRPCTimeout.nanoseconds(value) == nil)
    }

    @Test("Go's names for the grpc_code label")
    func goNames() {
        #expect(GRPCStatus.Code.ok.goName == "OK")
        #expect(GRPCStatus.Code.cancelled.goName == "Canceled")
        #expect(GRPCStatus.Code.allCases.count == 17)
        #expect(Set(GRPCStatus.Code.allCases.map(\.goName)).count == 17)
    }
}
