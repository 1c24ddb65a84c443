import Dispatch
import Foundation

/// Runs `action` on a queue of its own each time the process receives `signal` (SIGHUP: read
/// the certificate and token files again), for as long as it is kept. The signal's default
/// action (for SIGHUP, ending the process) is turned off.
public final class SignalHandler {
    private let source: any DispatchSourceSignal

    public init(_ number: Int32, label: String, action: @escaping @Sendable () -> Void) {
        signal(number, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: number, queue: DispatchQueue(label: label))
        source.setEventHandler(handler: action)
        source.resume()
    }

    deinit {
        source.cancel()
    }
}
