import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// The browser pages, read once from the bundled Web folder and served from memory with
/// strict security headers. Small enough that memory beats file I/O per request.
struct WebAssets: Sendable {
    struct Asset: Sendable {
        var body: ByteBuffer
        var contentType: String
        var etag: String
    }

    /// Page routes without the `.html` suffix, as the links in invites use them.
    static let pageAliases = ["/": "/index.html", "/worker": "/worker.html", "/join": "/join.html",
                              "/auditor": "/auditor.html", "/ops": "/ops.html", "/test": "/test.html"]

    static let contentTypes = ["html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
                               "css": "text/css; charset=utf-8", "svg": "image/svg+xml", "png": "image/png",
                               "ico": "image/x-icon", "json": "application/json", "webmanifest": "application/manifest+json",
                               "txt": "text/plain; charset=utf-8"]

    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'self'; connect-src 'self' wss:; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        .strictTransportSecurity: "max-age=31536000",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("Permissions-Policy")!: "camera=(self), microphone=(self), display-capture=(self), geolocation=()",
    ]

    let assets: [String: Asset]

    init(directory: URL) throws {
        var assets: [String: Asset] = [:]
        let root = directory.standardizedFileURL.path
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let relative = enumerator?.nextObject() as? String {
            let path = root + "/" + relative
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let data = FileManager.default.contents(atPath: path) else { continue }
            let ext = (relative as NSString).pathExtension.lowercased()
            guard let type = Self.contentTypes[ext] else { continue }
            assets["/" + relative] = Asset(body: ByteBuffer(bytes: data), contentType: type,
                                           etag: "\"" + SHA256.hash(data: data).prefix(12).map { String(format: "%02x", $0) }.joined() + "\"")
        }
        self.assets = assets
    }

    static func bundled() throws -> WebAssets {
        guard let url = Bundle.module.url(forResource: "Web", withExtension: nil) else {
            throw ConfigurationError.invalid("the Web resources are missing from the build")
        }
        return try WebAssets(directory: url)
    }

    func asset(for path: String) -> Asset? {
        assets[Self.pageAliases[path] ?? path]
    }
}

struct WebAssetsMiddleware<Context: RequestContext>: RouterMiddleware {
    let web: WebAssets

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get || request.method == .head, let asset = web.asset(for: request.uri.path) else {
            var response = try await next(request, context)
            response.headers.append(contentsOf: WebAssets.securityHeaders)
            return response
        }
        var headers = WebAssets.securityHeaders
        headers[.contentType] = asset.contentType
        headers[.eTag] = asset.etag
        headers[.cacheControl] = "no-cache"
        if request.headers[.ifNoneMatch] == asset.etag {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.body))
    }
}
