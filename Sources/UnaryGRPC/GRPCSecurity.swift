import Foundation
import NIOSSL
import Synchronization

/// What a connection must show before its calls are served: TLS (a server certificate, and a
/// client certificate signed by a given CA for mutual TLS) and a bearer token. Both come from
/// files, and `reload()` reads them again (SIGHUP): connections already open keep the
/// certificate they were accepted with; new connections and every call from then on see the new
/// files. A reload that fails keeps what was loaded before.
public final class GRPCSecurity: Sendable {
    public struct Files: Sendable, Equatable {
        /// The server's certificate chain (PEM) and its private key; nil: plaintext.
        public var certificate: String?
        public var key: String?
        /// CA certificates (PEM) client certificates must be signed by; nil: no client certificate asked.
        public var clientCA: String?
        /// A file holding the bearer token calls must carry; nil: no token asked.
        public var token: String?

        public init(certificate: String? = nil, key: String? = nil, clientCA: String? = nil, token: String? = nil) {
            self.certificate = certificate
            self.key = key
            self.clientCA = clientCA
            self.token = token
        }

        public var usesTLS: Bool { certificate != nil }
    }

    public struct LoadError: Error, CustomStringConvertible {
        /// Which setting the bad file belongs to.
        public enum Concern: Sendable { case token, certificate }
        public let concern: Concern
        public let description: String
    }

    private struct Loaded: Sendable {
        var tls: NIOSSLContext?
        /// `Bearer <token>` as bytes, the whole `authorization` value a call must send.
        var expected: [UInt8]?
    }

    public let files: Files
    private let loaded: Mutex<Loaded>

    /// Reads the files once; a missing or bad file throws, naming it.
    public init(files: Files) throws {
        self.files = files
        loaded = Mutex(try Self.load(files))
    }

    /// Reads the files again. Throws (and keeps serving with what it had) if any is bad.
    public func reload() throws {
        let fresh = try Self.load(files)
        loaded.withLock { $0 = fresh }
    }

    /// The TLS context for a connection accepted now; nil for plaintext.
    var tlsContext: NIOSSLContext? { loaded.withLock { $0.tls } }

    /// Whether a call with this `authorization` header value may be served: always, when no
    /// token is configured. Compared in time that depends only on the lengths, so a caller
    /// cannot find the token a byte at a time.
    func authorizes(_ authorization: String?) -> Bool {
        guard let expected = loaded.withLock({ $0.expected }) else { return true }
        guard let authorization else { return false }
        var difference = UInt8(truncatingIfNeeded: authorization.utf8.count ^ expected.count)
        var index = 0
        for byte in authorization.utf8 {
            difference |= byte ^ expected[index % expected.count]
            index += 1
        }
        return difference == 0
    }

    private static func load(_ files: Files) throws -> Loaded {
        var loaded = Loaded()
        if let tokenFile = files.token {
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                throw LoadError(concern: .token, description: "cannot read the token file \(tokenFile)")
            }
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw LoadError(concern: .token, description: "the token file \(tokenFile) is empty") }
            guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw LoadError(concern: .token, description: "the token in \(tokenFile) holds spaces or characters a header cannot carry")
            }
            loaded.expected = Array("Bearer \(token)".utf8)
        }
        guard let certificateFile = files.certificate else { return loaded }
        guard let keyFile = files.key else { throw LoadError(concern: .certificate, description: "a certificate without its key") }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
            guard !chain.isEmpty else { throw LoadError(concern: .certificate, description: "no certificate in \(certificateFile)") }
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem)))
            configuration.minimumTLSVersion = .tlsv12
            configuration.applicationProtocols = ["h2"]
            if let clientCA = files.clientCA {
                let roots = try NIOSSLCertificate.fromPEMFile(clientCA)
                guard !roots.isEmpty else { throw LoadError(concern: .certificate, description: "no certificate in \(clientCA)") }
                configuration.trustRoots = .certificates(roots)
                // A client certificate is required and must chain to the CA; clients have no
                // host name to check.
                configuration.certificateVerification = .noHostnameVerification
            }
            loaded.tls = try NIOSSLContext(configuration: configuration)
        } catch let error as LoadError {
            throw error
        } catch {
            throw LoadError(concern: .certificate, description: "cannot load \(certificateFile) / \(keyFile)\(files.clientCA.map { " / \($0)" } ?? ""): \(error)")
        }
        return loaded
    }
}
