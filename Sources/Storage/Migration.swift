import Foundation

/// One migration: a `NNN_description.sql` file, from the binary or a directory.
public struct Migration: Sendable, Equatable {
    /// NNN, the order of application.
    public let version: Int
    /// The file name.
    public let name: String
    public let sql: String
    /// FNV-1a 64 of the file's bytes, 16 hex digits: an applied file must not change.
    public let checksum: String
    /// The table named by a `-- scope: <table>` line among the file's leading comment lines:
    /// the file migrates a table another tool may own (nil: one of ours).
    public var scope: String? {
        for line in sql.split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix("--") else { return nil }
            let comment = line.dropFirst(2).trimmingCharacters(in: .whitespaces)
            if comment.hasPrefix("scope:") {
                let table = comment.dropFirst("scope:".count).trimmingCharacters(in: .whitespaces)
                return table.isEmpty ? nil : table
            }
        }
        return nil
    }

    public init(version: Int, name: String, sql: String, checksum: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = checksum
    }

    /// FNV-1a 64 of `bytes` as 16 lower-case hex digits (a change detector, not a secure hash).
    public static func checksum(of bytes: some Sequence<UInt8>) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
