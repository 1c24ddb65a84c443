import Foundation
import UnaryGRPC

extension Settings {
    /// `GRPC_TLS_*` and `GRPC_AUTH_TOKEN_FILE`, with their files read once so a missing file, a
    /// key that does not match its certificate or an empty token stops start-up (and
    /// `event-handler check-config`) naming the variable. nil when none is set.
    static func grpcSecurity(_ reader: SettingsReader) throws -> GRPCSecurity? {
        let files = GRPCSecurity.Files(
            certificate: try reader.string("GRPC_TLS_CERT_FILE"), key: try reader.string("GRPC_TLS_KEY_FILE"),
            clientCA: try reader.string("GRPC_TLS_CLIENT_CA_FILE"), token: try reader.string("GRPC_AUTH_TOKEN_FILE"))
        guard files != GRPCSecurity.Files() else { return nil }
        if (files.certificate == nil) != (files.key == nil) {
            throw ConfigurationError(
                variable: files.certificate == nil ? "GRPC_TLS_CERT_FILE" : "GRPC_TLS_KEY_FILE",
                message: "is needed too: set both GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE, or neither")
        }
        if files.clientCA != nil && files.certificate == nil {
            throw ConfigurationError(
                variable: "GRPC_TLS_CLIENT_CA_FILE", message: "needs TLS: set GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE too")
        }
        for (variable, path) in [
            ("GRPC_TLS_CERT_FILE", files.certificate), ("GRPC_TLS_KEY_FILE", files.key),
            ("GRPC_TLS_CLIENT_CA_FILE", files.clientCA), ("GRPC_AUTH_TOKEN_FILE", files.token),
        ] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw ConfigurationError(variable: variable, message: "cannot read \(path)")
            }
        }
        do {
            return try GRPCSecurity(files: files)
        } catch let error as GRPCSecurity.LoadError {
            throw ConfigurationError(variable: error.concern == .token ? "GRPC_AUTH_TOKEN_FILE" : "GRPC_TLS_CERT_FILE", message: "\(error)")
        }
    }
}
