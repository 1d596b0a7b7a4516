import Hummingbird
import NIOCore

/// The request context of every route: Hummingbird's basic one plus the connection's remote
/// address and the client's (behind a trusted load balancer, the address it forwarded), for
/// limits that are per client address.
public protocol ClientAddressRequestContext: RemoteAddressRequestContext {
    /// Who the request is from, as far as this server believes (`server.trustedProxies`).
    var clientAddress: SocketAddress? { get }
}

public struct ClientAddressContext: RequestContext, ClientAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// Set by `ForwardedClientMiddleware`; the peer itself unless a trusted proxy said otherwise.
    public var clientAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        clientAddress = remoteAddress
    }
}
