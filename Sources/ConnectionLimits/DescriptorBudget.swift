#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's open-file limit and how it is shared: a reserve for what is not a client
/// connection, the rest between the listeners' caps. Each accepted connection and each relay
/// socket is one descriptor, so caps that fit under the limit mean a flood on one listener
/// reaches that listener's cap, never the process's limit (where every listener, the database
/// and new relay sockets would fail together).
public struct DescriptorBudget: Sendable, Equatable {
    /// Descriptors kept back for the listeners themselves, the database and its WAL, the event
    /// loops' epoll/eventfd/timerfd, the relay's poller, log and key files read at run time.
    public static let reserve = 128

    public let limit: Int

    public init(limit: Int) {
        self.limit = limit
    }

    /// The caps as wanted when they fit under the limit together with the reserve; otherwise
    /// each scaled down in proportion (a wanted 0 stays 0, anything else stays at least 1).
    public func fit(_ wanted: [Int]) -> [Int] {
        let available = max(0, limit - Self.reserve)
        let total = wanted.reduce(0, +)
        guard total > available else { return wanted }
        return wanted.map { $0 == 0 ? 0 : max(1, Int(Int64($0) * Int64(available) / Int64(total))) }
    }

    /// Raises the soft open-file limit to the hard one (the soft default of 1,024 is far below
    /// what a relay needs; the hard limit is what the administrator allows). Returns the limit
    /// before and after; after equals before if raising failed.
    public static func raiseOpenFileLimit() -> (before: Int, after: Int) {
        var limits = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limits) == 0 else { return (0, 0) }
        let before = limits.rlim_cur
        // An unlimited hard limit is not a valid soft one for files: the kernel caps it at
        // fs.nr_open, whose default is 2^20.
        let wanted = limits.rlim_max == rlim_t.max ? rlim_t(1 << 20) : limits.rlim_max
        if before < wanted {
            limits.rlim_cur = wanted
            if setrlimit(resource, &limits) != 0 { limits.rlim_cur = before }
        }
        return (Int(clamping: before), Int(clamping: limits.rlim_cur))
    }
}
