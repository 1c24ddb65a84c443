import Foundation

/// The service's monotonic clock in nanoseconds, as a plain integer the buffer can store per
/// entry (8 bytes, where a `ContinuousClock.Instant` is opaque). CLOCK_MONOTONIC: not
/// affected by wall-clock changes; a vDSO call, about 20 ns.
enum MonotonicTime {
    static var now: UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }
}
