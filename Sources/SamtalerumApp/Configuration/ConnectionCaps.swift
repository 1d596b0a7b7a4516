import ConnectionLimits
import Logging

/// Every listener's connection cap and the relay's socket cap: as configured, or, when the
/// open-file limit cannot hold them all beside the reserve, scaled down together, so that a
/// flood fills one listener's share and never the process's descriptors.
struct ConnectionCaps: Equatable {
    var https: Int
    var httpRedirect: Int
    var turnStreams: Int
    var relayAllocations: Int
    /// The caps as configured, for the warning when they had to be lowered.
    let wanted: [Int]

    /// The redirect listener answers one redirect per connection; browsers go on to HTTPS at once.
    static let httpRedirectConnections = 1024

    init(configuration: AppConfiguration, openFileLimit: Int) {
        let turn = configuration.turn.enabled
        wanted = [
            configuration.server.maxConnections,
            configuration.server.httpRedirectPort > 0 ? Self.httpRedirectConnections : 0,
            turn ? configuration.turn.maxStreamConnections : 0,
            turn ? configuration.turn.maxAllocations : 0,
        ]
        let fitted = DescriptorBudget(limit: openFileLimit).fit(wanted)
        (https, httpRedirect, turnStreams, relayAllocations) = (fitted[0], fitted[1], fitted[2], fitted[3])
    }

    var lowered: Bool { wanted != [https, httpRedirect, turnStreams, relayAllocations] }

    func log(limit: (before: Int, after: Int), logger: Logger) {
        let metadata: Logger.Metadata = [
            "openFileLimit": "\(limit.after)", "raisedFrom": "\(limit.before)", "https": "\(https)",
            "httpRedirect": "\(httpRedirect)", "turnStreams": "\(turnStreams)", "relayAllocations": "\(relayAllocations)",
        ]
        if lowered {
            logger.warning(
                "the open-file limit cannot hold the configured connection caps, so they are lowered; raise the hard limit (systemd: LimitNOFILE=)",
                metadata: metadata)
        } else {
            logger.info("connection caps", metadata: metadata)
        }
    }
}
