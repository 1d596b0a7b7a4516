import Hummingbird
import NIOCore

/// The request context of every route: Hummingbird's basic one plus the connection's remote
/// address, for limits that are per client address.
public struct ClientAddressContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
