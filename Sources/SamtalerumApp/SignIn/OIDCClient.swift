import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// What Samtalerum needs to sign staff in through the municipality's OpenID Connect provider.
struct OIDCSettings: Sendable {
    var issuer: String
    var clientID: String
    /// Nil for a public client: PKCE alone then protects the code.
    var clientSecret: String?
    /// This server as browsers reach it (`server.publicURL`); the IdP returns to `/auth/callback` there.
    var publicBaseURL: String
    var sessionTTL: TimeInterval
    var scope = "openid profile"

    var redirectURI: String { publicBaseURL + "/auth/callback" }
}

enum OIDCError: Error, CustomStringConvertible {
    case provider(String)
    case insecureIssuer(String)

    var description: String {
        switch self {
        case .provider(let why): "the identity provider: \(why)"
        case .insecureIssuer(let issuer): "identity.externalIssuer \(issuer) must be https (http only on loopback, for tests)"
        }
    }
}

/// The relying party's side of the authorization code flow with PKCE: the provider's metadata
/// (read once, when first needed, so the server starts while the IdP is down), the URL the
/// browser is sent to, and the server-side code exchange.
actor OIDCClient {
    struct Metadata: Decodable, Sendable {
        var issuer: String
        var authorizationEndpoint: String
        var tokenEndpoint: String
        var endSessionEndpoint: String?

        enum CodingKeys: String, CodingKey {
            case issuer
            case authorizationEndpoint = "authorization_endpoint"
            case tokenEndpoint = "token_endpoint"
            case endSessionEndpoint = "end_session_endpoint"
        }
    }

    struct TokenResponse: Decodable {
        var idToken: String?
        enum CodingKeys: String, CodingKey { case idToken = "id_token" }
    }

    let settings: OIDCSettings
    private let http: HTTPClient
    private var cached: Metadata?
    static let maxResponseBytes = 256 * 1024
    static let timeout: TimeAmount = .seconds(10)

    init(settings: OIDCSettings, http: HTTPClient = .shared) throws {
        guard let url = URL(string: settings.issuer), let host = url.host,
              url.scheme == "https" || (url.scheme == "http" && Self.isLoopback(host))
        else { throw OIDCError.insecureIssuer(settings.issuer) }
        self.settings = settings
        self.http = http
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    func metadata() async throws -> Metadata {
        if let cached { return cached }
        let base = settings.issuer.hasSuffix("/") ? String(settings.issuer.dropLast()) : settings.issuer
        let request = HTTPClientRequest(url: base + "/.well-known/openid-configuration")
        let found: Metadata = try await fetchJSON(request)
        // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
        guard found.issuer == settings.issuer else {
            throw OIDCError.provider("discovery names issuer \(found.issuer), expected \(settings.issuer)")
        }
        cached = found
        return found
    }

    func authorizationURL(state: String, nonce: String, challenge: String) async throws -> String {
        let endpoint = try await metadata().authorizationEndpoint
        let query = Self.formEncoded([
            ("response_type", "code"), ("client_id", settings.clientID), ("redirect_uri", settings.redirectURI),
            ("scope", settings.scope), ("state", state), ("nonce", nonce),
            ("code_challenge", challenge), ("code_challenge_method", "S256"),
        ])
        return endpoint + (endpoint.contains("?") ? "&" : "?") + query
    }

    /// Trades the code for tokens at the token endpoint; returns the ID token (verified by the caller).
    func exchange(code: String, verifier: String) async throws -> String {
        var request = HTTPClientRequest(url: try await metadata().tokenEndpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        var form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", settings.redirectURI),
                    ("code_verifier", verifier)]
        if let secret = settings.clientSecret {
            // client_secret_basic (RFC 6749 §2.3.1): both parts form-encoded before base64.
            let credentials = Self.formEncode(settings.clientID) + ":" + Self.formEncode(secret)
            request.headers.add(name: "Authorization", value: "Basic " + Data(credentials.utf8).base64EncodedString())
        } else {
            form.append(("client_id", settings.clientID))
        }
        request.body = .bytes(ByteBuffer(string: Self.formEncoded(form)))
        let tokens: TokenResponse = try await fetchJSON(request)
        guard let idToken = tokens.idToken else { throw OIDCError.provider("no id_token in the token response") }
        return idToken
    }

    /// Where the browser goes to end the IdP session too (RP-initiated logout), if the IdP has it.
    func logoutURL(idToken: String, returnTo: String) async -> String? {
        guard let endpoint = try? await metadata().endSessionEndpoint else { return nil }
        let query = Self.formEncoded([("id_token_hint", idToken), ("post_logout_redirect_uri", returnTo),
                                      ("client_id", settings.clientID)])
        return endpoint + (endpoint.contains("?") ? "&" : "?") + query
    }

    private func fetchJSON<Body: Decodable>(_ request: HTTPClientRequest) async throws -> Body {
        let response = try await http.execute(request, timeout: Self.timeout)
        let body = try await response.body.collect(upTo: Self.maxResponseBytes)
        guard response.status == .ok else {
            throw OIDCError.provider("\(request.url) answered \(response.status.code)")
        }
        do {
            return try JSONDecoder().decode(Body.self, from: Data(buffer: body))
        } catch {
            throw OIDCError.provider("\(request.url) sent JSON we cannot read")
        }
    }

    static func formEncoded(_ pairs: [(String, String)]) -> String {
        pairs.map { formEncode($0.0) + "=" + formEncode($0.1) }.joined(separator: "&")
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// Everything but RFC 3986's unreserved characters is percent-encoded.
    static func formEncode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }
}
