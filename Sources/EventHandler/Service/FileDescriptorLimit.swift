import Foundation
import Logging

/// Every gRPC connection is a file descriptor: the soft limit (often 1,024) would cap them far
/// below `GRPC_MAX_CONNECTIONS`, so start-up raises it to the hard limit and says so.
enum FileDescriptorLimit {
    static func raiseToHard(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            logger.warning("cannot read RLIMIT_NOFILE", metadata: ["errno": "\(errno)"])
            return
        }
        let before = limit.rlim_cur
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
                logger.warning("cannot raise RLIMIT_NOFILE", metadata: ["soft": "\(before)", "hard": "\(limit.rlim_max)", "errno": "\(errno)"])
                return
            }
        }
        logger.info("open files limit", metadata: ["soft_before": "\(before)", "soft": "\(limit.rlim_cur)", "hard": "\(limit.rlim_max)"])
    }
}
