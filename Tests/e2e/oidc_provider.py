"""A real OpenID Connect provider for the sign-in tests, built on Authlib's authorization
server (authorization code grant, PKCE S256 required, OpenID Connect ID tokens signed RS256
with a `kid`) on Flask. Only the storage (dicts) and the login form are ours.

    python3 oidc_provider.py --port P --redirect-uri https://127.0.0.1:S/auth/callback --jwks-out FILE

Writes the public JWKS to FILE, prints "ready" and serves http://127.0.0.1:P until killed.
GET /log lists what it saw, so tests can check PKCE and who exchanged the code.
"""

import argparse
import html
import json
import secrets
import sys
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, redirect, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

KID = "test-idp-1"
CLIENT_ID = "samtalerum-test"
CLIENT_SECRET = "test-client-secret"
# username → (password, sub, roles). `nils` has no Samtalerum role.
USERS = {
    "anna": ("anna-pw", "emp-1001", ["Samtalerum.Worker"]),
    "otto": ("otto-pw", "emp-2002", ["Samtalerum.Ops"]),
    "alma": ("alma-pw", "emp-3003", ["Samtalerum.Auditor"]),
    "nils": ("nils-pw", "emp-4004", ["Kantine.Bruger"]),
}


class User:
    def __init__(self, name):
        self.name = name
        _, self.sub, self.roles = USERS[name]

    def get_user_id(self):
        return self.sub


class Client:
    def __init__(self, redirect_uri):
        self.client_id = CLIENT_ID
        self.redirect_uri = redirect_uri

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uri

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in ("openid", "profile"))

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, CLIENT_SECRET)

    def check_endpoint_auth_method(self, method, endpoint):
        return method == "client_secret_basic"

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


class Code:
    def __init__(self, code, client_id, redirect_uri, scope, user, nonce, challenge, method):
        self.code, self.client_id, self.redirect_uri, self.scope = code, client_id, redirect_uri, scope
        self.user, self.nonce = user, nonce
        self.code_challenge, self.code_challenge_method = challenge, method
        self.auth_time = int(time.time())

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None

    def is_expired(self):
        return time.time() - self.auth_time > 300


def build(issuer, redirect_uri, key):
    app = Flask(__name__)
    client = Client(redirect_uri)
    codes = {}
    log = []

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]

        def save_authorization_code(self, code, req):
            data = req.payload.data
            codes[code] = Code(code, CLIENT_ID, req.payload.redirect_uri, req.scope, req.user, data.get("nonce"),
                               data.get("code_challenge"), data.get("code_challenge_method"))

        def query_authorization_code(self, code, client_):
            found = codes.get(code)
            return found if found and found.client_id == client_.get_client_id() and not found.is_expired() else None

        def delete_authorization_code(self, authorization_code):
            codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code):
            return authorization_code.user

    class IDTokens(OpenIDCode):
        def resolve_client_private_key(self, client_):
            return key

        def get_client_algorithm(self, client_):
            return "RS256"

        def get_encode_header(self, client_):
            return {"alg": "RS256", "kid": KID}

        def get_client_claims(self, client_):
            return {"iss": issuer, "aud": [CLIENT_ID]}

        def exists_nonce(self, nonce, req):
            return any(c.nonce == nonce for c in codes.values())

        def generate_user_info(self, user, scope):
            return UserInfo(sub=user.sub, roles=user.roles)

    server = AuthorizationServer(app, query_client=lambda cid: client if cid == CLIENT_ID else None,
                                 save_token=lambda token, req: None)
    server.register_grant(CodeGrant, [CodeChallenge(required=True), IDTokens(require_nonce=True)])

    @app.get("/.well-known/openid-configuration")
    def discovery():
        return jsonify(issuer=issuer, authorization_endpoint=issuer + "/authorize", token_endpoint=issuer + "/token",
                       jwks_uri=issuer + "/jwks", end_session_endpoint=issuer + "/logout",
                       response_types_supported=["code"], subject_types_supported=["public"],
                       id_token_signing_alg_values_supported=["RS256"], code_challenge_methods_supported=["S256"],
                       token_endpoint_auth_methods_supported=["client_secret_basic"])

    @app.get("/jwks")
    def jwks():
        return jsonify(keys=[key.as_dict(private=False)])

    def login_form(error=""):
        # Posts back to the same URL, so the authorization request's parameters come along.
        action = html.escape(request.full_path)
        note = f'<p id="idp-error">{html.escape(error)}</p>' if error else ""
        return f"""<!doctype html><html lang="da"><head><meta charset="utf-8"><title>Kommunens login (test)</title></head>
<body><h1>Kommunens login</h1>{note}<form method="post" action="{action}">
<label for="idp-username">Brugernavn</label><input id="idp-username" name="username" autocomplete="off">
<label for="idp-password">Adgangskode</label><input id="idp-password" name="password" type="password">
<button id="idp-login" name="decision" value="login" type="submit">Log ind</button>
<button id="idp-deny" name="decision" value="deny" type="submit">Annullér</button></form></body></html>"""

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize():
        if request.method == "GET":
            log.append({"event": "authorize", "args": dict(request.args)})
            try:
                server.get_consent_grant(end_user=None)
            except Exception as error:  # an invalid request is shown, as a real IdP would
                return f"invalid authorization request: {html.escape(str(error))}", 400
            return login_form()
        if request.form.get("decision") == "deny":
            return server.create_authorization_response(grant_user=None)
        name = request.form.get("username", "")
        if name not in USERS or not secrets.compare_digest(request.form.get("password", ""), USERS[name][0]):
            return login_form("Forkert brugernavn eller adgangskode.")
        log.append({"event": "login", "user": name})
        return server.create_authorization_response(grant_user=User(name))

    @app.post("/token")
    def token():
        log.append({"event": "token", "userAgent": request.headers.get("User-Agent", ""),
                    "hasVerifier": bool(request.form.get("code_verifier")),
                    "basicAuth": request.headers.get("Authorization", "").startswith("Basic ")})
        return server.create_token_response()

    @app.get("/logout")
    def logout():
        log.append({"event": "logout", "hasHint": bool(request.args.get("id_token_hint"))})
        target = request.args.get("post_logout_redirect_uri", "")
        base = redirect_uri.removesuffix("/auth/callback")
        return redirect(target) if target.startswith(base + "/") else ("Du er logget ud.", 200)

    @app.get("/log")
    def show_log():
        return jsonify(log)

    return app


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--jwks-out", required=True)
    args = parser.parse_args()
    issuer = f"http://127.0.0.1:{args.port}"
    key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
    with open(args.jwks_out, "w") as out:
        json.dump({"keys": [key.as_dict(private=False)]}, out)
    http = make_server("127.0.0.1", args.port, build(issuer, args.redirect_uri, key), threaded=True)
    print("ready", flush=True)
    http.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
