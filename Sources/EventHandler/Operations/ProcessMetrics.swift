import Foundation

/// The `process_*` families Prometheus client libraries export (the incumbent's Go stack did):
/// CPU seconds, resident and virtual memory, open and maximum file descriptors, start time.
/// Read from `/proc/self` at each scrape; a family whose source cannot be read is left out
/// rather than reported as zero.
enum ProcessMetrics {
    /// Clock ticks per second and page size: constants of the running kernel.
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    private static let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
    /// Seconds since the epoch at boot (`btime` of /proc/stat), read once.
    private static let bootTime: Double? = {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst("btime ".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }()

    static func exposition() -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: Double?) {
            guard let value else { return }
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(format(value))\n"
        }
        let stat = selfStat()
        family(
            "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
            stat.map { ($0.utime + $0.stime) / ticksPerSecond })
        family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", stat.map { $0.rss * pageSize })
        family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", stat.map { $0.vsize })
        family("process_open_fds", "gauge", "Number of open file descriptors.", openDescriptors())
        family("process_max_fds", "gauge", "Maximum number of open file descriptors.", maxDescriptors())
        family(
            "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
            stat.flatMap { stat in bootTime.map { $0 + stat.starttime / ticksPerSecond } })
        return out
    }

    /// Fields of /proc/self/stat (proc(5)): utime 14, stime 15, starttime 22, vsize 23, rss 24,
    /// counted after the command name, which is in parentheses and may hold spaces.
    private static func selfStat() -> (utime: Double, stime: Double, starttime: Double, vsize: Double, rss: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // After ")": field 3 (state) onwards.
        let fields = text[text.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Double? { fields.count > number - 3 ? Double(fields[number - 3]) : nil }
        guard let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23), let rss = field(24)
        else { return nil }
        return (utime, stime, start, vsize, rss)
    }

    private static func openDescriptors() -> Double? {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")).map { Double($0.count) }
    }

    private static func maxDescriptors() -> Double? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return limit.rlim_cur == rlim_t.max ? nil : Double(limit.rlim_cur)
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
