import Foundation

/// One `/metrics` page, parsed: every series by its full name with labels
/// (`events_processed_total{source="grpc",type="stat"}`).
struct MetricsPage {
    private(set) var series: [(name: String, labels: String, value: Double)] = []

    init(text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let key = line[..<space]
            if let brace = key.firstIndex(of: "{") {
                series.append((String(key[..<brace]), String(key[brace...]), value))
            } else {
                series.append((String(key), "", value))
            }
        }
    }

    /// The sum over every series of `name` whose labels contain each of `matching`
    /// (`method="..."`).
    func sum(_ name: String, matching: [String] = []) -> Double {
        series.reduce(0) { total, entry in
            entry.name == name && matching.allSatisfy({ entry.labels.contains($0) }) ? total + entry.value : total
        }
    }

    /// A histogram's cumulative bucket counts by upper bound (`le`), summed over its label sets.
    func buckets(_ histogram: String) -> [Double: Double] {
        var counts: [Double: Double] = [:]
        for entry in series where entry.name == histogram + "_bucket" {
            guard let range = entry.labels.range(of: "le=\""),
                let end = entry.labels[range.upperBound...].firstIndex(of: "\"")
            else { continue }
            let bound = String(entry.labels[range.upperBound..<end])
            let le = bound == "+Inf" ? Double.infinity : Double(bound) ?? .nan
            counts[le, default: 0] += entry.value
        }
        return counts
    }
}

/// Quantiles from the difference of two cumulative bucket snapshots, interpolated linearly
/// inside the bucket the rank falls in (what Prometheus' histogram_quantile does).
enum BucketQuantile {
    static func quantile(_ q: Double, from before: [Double: Double], to after: [Double: Double]) -> Double? {
        let bounds = after.keys.sorted()
        let counts = bounds.map { (after[$0] ?? 0) - (before[$0] ?? 0) }
        guard let total = counts.last, total > 0 else { return nil }
        let rank = q * total
        var lower = 0.0
        var below = 0.0
        for (bound, cumulative) in zip(bounds, counts) {
            if cumulative >= rank {
                if bound.isInfinite { return lower }
                let inBucket = cumulative - below
                return inBucket > 0 ? lower + (bound - lower) * (rank - below) / inBucket : bound
            }
            lower = bound
            below = cumulative
        }
        return lower
    }
}

/// A blocking HTTP/1.0 GET on 127.0.0.1 (the operations port): enough for `/metrics` and
/// `/readyz`, with no client library and no cooperative-pool thread involved.
enum LoopbackHTTP {
    /// The status code and body, or nil when nothing answers.
    static func get(port: Int, path: String, timeout: TimeInterval = 2) -> (status: Int, body: String)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var wait = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else { return nil }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let statusLine = text.split(separator: "\r\n", maxSplits: 1).first,
            let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) }),
            let headerEnd = text.range(of: "\r\n\r\n")
        else { return nil }
        return (status, String(text[headerEnd.upperBound...]))
    }
}
