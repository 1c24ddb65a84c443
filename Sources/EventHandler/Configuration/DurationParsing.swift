import Foundation

/// The longest duration a setting takes: a year. Anything longer is a mistake (and past about
/// 292 years it cannot even be held in nanoseconds).
let maximumSettingDuration = Duration.seconds(366 * 86_400)

/// Parses durations the way the incumbent's `.env` writes them: a number and a unit, units
/// `ms`, `s`, `m`, `h`, and Go-style sums such as `1m30s` or `1.5s`. A bare `0` is zero.
/// nil for text that is not a duration, and for one longer than `maximumSettingDuration`.
func parseDuration(_ text: String) -> Duration? {
    let text = text.trimmingCharacters(in: .whitespaces)
    if text == "0" { return .zero }
    var total: Double = 0
    var rest = Substring(text)
    guard !rest.isEmpty else { return nil }
    while !rest.isEmpty {
        let number = rest.prefix { $0.isNumber || $0 == "." }
        guard !number.isEmpty, let value = Double(number) else { return nil }
        rest = rest.dropFirst(number.count)
        let unit = rest.prefix { $0.isLetter }
        rest = rest.dropFirst(unit.count)
        let seconds: Double
        switch unit {
        case "ms": seconds = value / 1_000
        case "s": seconds = value
        case "m": seconds = value * 60
        case "h": seconds = value * 3_600
        default: return nil
        }
        total += seconds
    }
    guard total.isFinite, total <= maximumSettingDuration.seconds else { return nil }
    return .nanoseconds(Int64((total * 1e9).rounded()))
}

extension Duration {
    /// Seconds as a Double, for timers and logs.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }

    /// Whole milliseconds (truncated): Redis PX arguments.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }

    /// Whole nanoseconds: monotonic-clock arithmetic.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
