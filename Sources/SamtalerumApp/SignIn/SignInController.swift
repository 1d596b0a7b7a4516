import Foundation
import HTTPTypes
import Hummingbird
import Identity
import Logging
import SamtalerumCore

enum SignInCookie {
    static let session = "__Host-samtalerum-session"
    /// Binds a sign-in to the browser that started it (login CSRF). Lax: the IdP's redirect back
    /// is a cross-site navigation, which never carries Strict cookies.
    static let login = "__Host-samtalerum-login"
}

/// Staff sign in through the municipality's OpenID Connect provider (authorization code flow
/// with PKCE, code exchanged by the server). The browser holds only an opaque session cookie:
/// `__Host-` (Secure, Path=/, no Domain), HttpOnly, SameSite=Strict, as short-lived as
/// `identity.sessionTTLSeconds`.
struct SignInController<Context: RequestContext> {
    let client: OIDCClient?
    let sessions: StaffSessions
    let authority: TokenAuthority
    let logger: Logger

    /// The pages that may be returned to after signing in; nothing else (no open redirect).
    static var pages: Set<String> { ["/worker", "/ops", "/auditor"] }
    /// The signalling `hello` of a cookie-signed-in worker carries one of these, fetched per connection.
    static var ticketTTL: TimeInterval { 120 }

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("methods", use: methods)
        routes.get("login", use: login)
        routes.get("callback", use: callback)
        routes.post("logout", use: logout)
        routes.post("ticket", use: ticket)
        return routes
    }

    struct Methods: ResponseEncodable {
        /// Sign in through the IdP; when false, pages offer the development token field instead.
        var identityProvider: Bool
    }

    @Sendable func methods(_ request: Request, context: Context) async throws -> Methods {
        Methods(identityProvider: client != nil)
    }

    @Sendable func login(_ request: Request, context: Context) async throws -> Response {
        guard let client else { throw Problem(.notFound, detail: "no identity provider is configured") }
        let next = request.uri.queryParameters.get("next").flatMap { Self.pages.contains($0) ? $0 : nil } ?? "/worker"
        let state = StaffSessions.randomToken()
        let verifier = StaffSessions.randomToken()
        let nonce = StaffSessions.randomToken()
        let url: String
        do {
            url = try await client.authorizationURL(state: state, nonce: nonce, challenge: StaffSessions.challenge(for: verifier))
        } catch {
            logger.error("identity provider unreachable", metadata: ["error": "\(error)"])
            return Self.continuePage(to: "\(next)#signin-error=unavailable")
        }
        sessions.begin(state: state, .init(verifier: verifier, nonce: nonce, next: next, startedAt: sessions.clock.now()))
        var headers: HTTPFields = [.location: url, .cacheControl: "no-store"]
        headers.append(HTTPField(name: .setCookie, value: Self.cookie(SignInCookie.login, state, sameSite: "Lax",
                                                                      maxAge: Int(SignInTable.pendingLifetime))))
        return Response(status: .found, headers: headers)
    }

    @Sendable func callback(_ request: Request, context: Context) async throws -> Response {
        guard let client else { throw Problem(.notFound, detail: "no identity provider is configured") }
        let query = request.uri.queryParameters
        guard let state = query.get("state"), request.cookies[SignInCookie.login]?.value == state,
              let login = sessions.finish(state: state)
        else { return Self.continuePage(to: "/worker#signin-error=expired", clearing: SignInCookie.login) }
        guard let code = query.get("code") else {
            // e.g. `access_denied`: the person is not allowed to use Samtalerum at the IdP.
            return Self.continuePage(to: "\(login.next)#signin-error=denied", clearing: SignInCookie.login)
        }
        let identity: StaffIdentity
        let idToken: String
        do {
            idToken = try await client.exchange(code: code, verifier: login.verifier)
        } catch {
            logger.error("sign-in code exchange failed", metadata: ["error": "\(error)"])
            return Self.continuePage(to: "\(login.next)#signin-error=unavailable", clearing: SignInCookie.login)
        }
        do {
            identity = try await authority.verifyIDToken(idToken, clientID: client.settings.clientID, nonce: login.nonce)
        } catch {
            // No mapped role, wrong audience or nonce, a key not in the JWKS: all the same to the person.
            logger.notice("ID token refused", metadata: ["reason": "\(error)"])
            return Self.continuePage(to: "\(login.next)#signin-error=denied", clearing: SignInCookie.login)
        }
        let ttl = client.settings.sessionTTL
        var session = identity
        session.expiresAt = sessions.clock.now().addingTimeInterval(ttl)
        let id = sessions.open(session, idToken: idToken)
        logger.info("staff signed in through the identity provider", metadata: ["role": "\(identity.role)"])
        var response = Self.continuePage(to: login.next, clearing: SignInCookie.login)
        response.headers.append(HTTPField(name: .setCookie, value: Self.cookie(SignInCookie.session, id, sameSite: "Strict", maxAge: Int(ttl))))
        return response
    }

    struct LogoutResponse: ResponseEncodable {
        /// Where the page goes next: the IdP's logout when it has one, else back to the page.
        var redirect: String
    }

    @Sendable func logout(_ request: Request, context: Context) async throws -> EditedResponse<LogoutResponse> {
        let next = request.uri.queryParameters.get("next").flatMap { Self.pages.contains($0) ? $0 : nil } ?? "/worker"
        var redirect = next
        if let id = request.cookies[SignInCookie.session]?.value, let closed = sessions.close(session: id), let client {
            redirect = await client.logoutURL(idToken: closed.idToken, returnTo: client.settings.publicBaseURL + next) ?? next
        }
        var headers: HTTPFields = [.cacheControl: "no-store"]
        headers.append(HTTPField(name: .setCookie, value: Self.cookie(SignInCookie.session, "", sameSite: "Strict", maxAge: 0)))
        return EditedResponse(headers: headers, response: LogoutResponse(redirect: redirect))
    }

    struct Ticket: ResponseEncodable {
        var token: String
        var expiresAt: Date
    }

    /// A short staff token for the signalling `hello` of a worker signed in with the cookie
    /// (WebSockets get no custom headers, and the cookie must stay unreadable to scripts).
    @Sendable func ticket(_ request: Request, context: Context) async throws -> EditedResponse<Ticket> {
        guard let id = request.cookies[SignInCookie.session]?.value, let identity = sessions.identity(session: id) else {
            throw Problem(.unauthorized, detail: "sign in first")
        }
        guard identity.role == .worker else { throw Problem(.forbidden, detail: "only workers take part in calls") }
        let ttl = min(Self.ticketTTL, identity.expiresAt.timeIntervalSince(sessions.clock.now()))
        let token = try await authority.issueStaffToken(subject: identity.subject, role: identity.role, ttl: ttl)
        return EditedResponse(headers: [.cacheControl: "no-store"],
                              response: Ticket(token: token, expiresAt: sessions.clock.now().addingTimeInterval(ttl)))
    }

    static func cookie(_ name: String, _ value: String, sameSite: String, maxAge: Int) -> String {
        "\(name)=\(value); Path=/; Max-Age=\(maxAge); Secure; HttpOnly; SameSite=\(sameSite)"
    }

    /// A page that moves on by itself. A redirect straight from the IdP's cross-site navigation
    /// would arrive without the new SameSite=Strict cookie; this page's own navigation carries it.
    static func continuePage(to target: String, clearing cookie: String? = nil) -> Response {
        let escaped = target.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "<", with: "&lt;")
        let html = """
            <!doctype html>
            <html lang="da"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
            <meta http-equiv="refresh" content="0; url=\(escaped)"><title>Samtalerum</title></head>
            <body><p><a href="\(escaped)">Fortsæt</a></p></body></html>
            """
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
            .contentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'",
        ]
        if let cookie { headers.append(HTTPField(name: .setCookie, value: Self.cookie(cookie, "", sameSite: "Lax", maxAge: 0))) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}
