import Foundation

/// A throwaway certificate authority and the certificates a TLS test needs, made by the `openssl`
/// command line in a directory of their own: real keys and real signatures, nothing committed.
public struct TestCertificates: Sendable {
    /// The directory holding every file below.
    public let directory: String
    /// The CA's certificate (PEM): what a client or server trusts.
    public let caCertificate: String
    /// A server certificate for `localhost` and 127.0.0.1, signed by the CA, and its key.
    public let serverCertificate: String
    public let serverKey: String
    /// A client certificate (CN `event-bridge`), signed by the CA, and its key.
    public let clientCertificate: String
    public let clientKey: String

    /// Makes a CA named `name` and its server and client certificates under a new temporary directory.
    public static func make(name: String = "test-ca") throws -> TestCertificates {
        let directory = NSTemporaryDirectory() + "certs-\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func path(_ file: String) -> String { "\(directory)/\(file)" }
        let subjectAltNames = path("server.ext")
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
            .write(toFile: subjectAltNames, atomically: true, encoding: .utf8)
        let clientUsage = path("client.ext")
        try "extendedKeyUsage=clientAuth\n".write(toFile: clientUsage, atomically: true, encoding: .utf8)

        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "2", "-subj", "/CN=\(name)"])
        for (leaf, subject, extensions) in [("server", "/CN=localhost", subjectAltNames), ("client", "/CN=event-bridge", clientUsage)] {
            try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                         "-keyout", path("\(leaf).key"), "-out", path("\(leaf).csr"), "-subj", subject])
            try openssl(["x509", "-req", "-in", path("\(leaf).csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                         "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", path("\(leaf).pem")])
        }
        // PostgreSQL refuses a key file others can read.
        for key in ["ca.key", "server.key", "client.key"] {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path(key))
        }
        return TestCertificates(
            directory: directory, caCertificate: path("ca.pem"), serverCertificate: path("server.pem"),
            serverKey: path("server.key"), clientCertificate: path("client.pem"), clientKey: path("client.key"))
    }

    /// Removes the directory and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func openssl(_ arguments: [String]) throws {
        let result = try ChildProcess.run("/usr/bin/openssl", arguments)
        guard result.status == 0 else {
            throw TestFailure("openssl \(arguments.joined(separator: " ")) exited \(result.status): \(result.standardError)\(result.standardOutput)")
        }
    }
}
