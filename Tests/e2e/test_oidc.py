"""Staff sign in through the municipality's identity provider, end to end in Chromium: a real
OpenID Connect provider (Authlib's authorization server on Flask, oidc_provider.py) runs on
loopback; the server is configured for it through the environment as an operator would.
Checked: the authorization code flow with PKCE S256, the code exchanged by the server (not the
browser), the session cookie's attributes (HttpOnly, Secure, SameSite=Strict, unreadable from
scripts), roles mapped by identity.externalRoleMapping, a worker's call on the cookie alone, and
logout here and at the IdP — at phone and desktop size."""

import json
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium.common.exceptions import WebDriverException

from conftest import (
    UI_TIMEOUT, Server, element, free_port, insecure_context, wait_state, wait_until,
)

HERE = Path(__file__).parent
SIZES = {"phone": (360, 740), "desktop": (1280, 800)}


class IdentityProvider:
    def __init__(self, port, redirect_uri, jwks_path, log_path):
        self.issuer = f"http://127.0.0.1:{port}"
        log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "oidc_provider.py"), "--port", str(port), "--redirect-uri", redirect_uri,
             "--jwks-out", str(jwks_path)],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True)
        log.close()
        line = self.process.stdout.readline()
        assert line.strip() == "ready", f"the identity provider did not start: {line!r}"

    def log(self):
        with urllib.request.urlopen(self.issuer + "/log", timeout=5) as response:
            return json.load(response)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def idp_server():
    """A Samtalerum server signing staff in through a real OpenID Connect provider."""
    data_dir = Path(tempfile.mkdtemp(prefix="samtalerum-oidc-"))
    port, idp_port = free_port(), free_port()
    jwks = data_dir / "idp-jwks.json"
    idp = IdentityProvider(idp_port, f"https://127.0.0.1:{port}/auth/callback", jwks, data_dir / "idp.log")
    secret = data_dir / "client-secret"
    secret.write_text("test-client-secret\n")
    secret.chmod(0o600)
    env = {
        "SAMTALERUM_IDENTITY_EXTERNAL_ISSUER": idp.issuer,
        "SAMTALERUM_IDENTITY_EXTERNAL_AUDIENCE": "api://samtalerum",
        "SAMTALERUM_IDENTITY_EXTERNAL_JWKS_FILE": str(jwks),
        "SAMTALERUM_IDENTITY_EXTERNAL_ROLE_MAPPING":
            '{"Samtalerum.Worker": worker, "Samtalerum.Ops": ops, "Samtalerum.Auditor": auditor}',
        "SAMTALERUM_IDENTITY_SIGN_IN_CLIENT_ID": "samtalerum-test",
        "SAMTALERUM_IDENTITY_SIGN_IN_CLIENT_SECRET_FILE": str(secret),
    }
    server = Server(data_dir / "server", port, data_dir / "server.log", env=env)
    try:
        server.start()
        yield server, idp
    finally:
        server.stop()
        idp.stop()
        print(f"--- server log tail ---\n{server.log_tail()}")
        shutil.rmtree(data_dir, ignore_errors=True)


def sign_in_at_idp(driver, username, password):
    element(driver, "idp-sign-in").click()
    element(driver, "idp-username").send_keys(username)
    element(driver, "idp-password").send_keys(password)
    element(driver, "idp-login").click()


def settled(driver, element_id):
    """The element once shown, riding out the page being replaced meanwhile (redirects)."""
    def shown():
        try:
            found = driver.find_elements("id", element_id)
            return found[0] if found and found[0].is_displayed() else None
        except WebDriverException:
            return None
    return wait_until(shown, UI_TIMEOUT, message=f"#{element_id} after navigating")


def session_cookie(driver):
    cookies = driver.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]
    return next((c for c in cookies if c["name"] == "__Host-samtalerum-session"), None)


def whoami_status(driver):
    return driver.execute_async_script(
        "const done = arguments[0]; fetch('/api/whoami', {cache: 'no-store'}).then((r) => done(r.status), () => done(0));")


@pytest.mark.parametrize("size", SIZES)
def test_a_worker_signs_in_through_the_idp_holds_a_call_and_signs_out(idp_server, browsers, size):
    server, idp = idp_server
    worker = browsers.open(f"worker-{size}", *SIZES[size])
    worker.get(server.url("/worker"))
    # Token paste is for development only: with an IdP configured the page offers the IdP.
    assert not element(worker, "idp-sign-in").get_attribute("href").startswith("http://"), "same-origin start"
    assert not worker.find_element("id", "token-input").is_displayed()
    sign_in_at_idp(worker, "anna", "anna-pw")

    who = settled(worker, "signed-in-as").text
    assert "emp-1001" in who
    cookie = session_cookie(worker)
    assert cookie, "a session cookie"
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict", cookie
    assert cookie["path"] == "/" and "domain" not in cookie or cookie["domain"] == "127.0.0.1", cookie
    assert "samtalerum-session" not in worker.execute_script("return document.cookie")

    # The flow was the code flow with PKCE S256, and the server (not Chromium) traded the code.
    log = idp.log()
    authorize = [e for e in log if e["event"] == "authorize"][-1]["args"]
    assert authorize["response_type"] == "code" and authorize["code_challenge_method"] == "S256"
    assert len(authorize["code_challenge"]) == 43 and authorize["nonce"] and authorize["state"]
    token = [e for e in log if e["event"] == "token"][-1]
    assert token["hasVerifier"] and token["basicAuth"] and "Chrome" not in token["userAgent"], token

    # A meeting and a call on the cookie alone (the signalling hello gets a short ticket).
    element(worker, "citizen-ref").send_keys(f"SAG-OIDC-{size}")
    element(worker, "create-meeting").click()
    invite = wait_until(lambda: element(worker, "invite-link").get_attribute("value"), UI_TIMEOUT, message="invite")
    assert "/join#invite=" in invite
    element(worker, "join-meeting-button").click()
    wait_state(worker, "waiting")
    assert element(worker, "meeting-title").text == f"SAG-OIDC-{size}", "the case reference is the call's title"

    worker.get(server.url("/worker"))  # leaving the page ends the call
    element(worker, "sign-out-button").click()
    settled(worker, "idp-sign-in")
    assert session_cookie(worker) is None, "the cookie is cleared"
    assert any(e["event"] == "logout" and e["hasHint"] for e in idp.log()), "RP-initiated logout at the IdP"
    assert whoami_status(worker) == 401


def test_the_session_cookie_opens_nothing_after_logout(idp_server, browsers):
    """A copied cookie is worthless once its session ended: the server forgets it."""
    server, _ = idp_server
    worker = browsers.open("worker-replay")
    worker.get(server.url("/worker"))
    sign_in_at_idp(worker, "anna", "anna-pw")
    settled(worker, "signed-in-as")
    value = session_cookie(worker)["value"]
    element(worker, "sign-out-button").click()
    settled(worker, "idp-sign-in")
    request = urllib.request.Request(server.url("/api/meetings"), headers={"Cookie": f"__Host-samtalerum-session={value}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=insecure_context(), timeout=5)
    assert refused.value.code == 401


@pytest.mark.parametrize("page,user,password,view,subject", [
    ("/ops", "otto", "otto-pw", "live-view", None),
    ("/auditor", "alma", "alma-pw", "query-view", "emp-3003"),
])
def test_ops_and_auditors_sign_in_with_their_mapped_roles(idp_server, browsers, page, user, password, view, subject):
    server, _ = idp_server
    driver = browsers.open(f"staff-{user}", *SIZES["phone"])
    driver.get(server.url(page))
    sign_in_at_idp(driver, user, password)
    settled(driver, view)
    assert driver.current_url.startswith(server.url(page))
    if subject:
        assert subject in element(driver, "signed-in-as").text
    assert whoami_status(driver) == 200


def test_someone_without_a_samtalerum_role_is_refused_with_a_reason(idp_server, browsers):
    server, _ = idp_server
    driver = browsers.open("no-role", *SIZES["desktop"])
    driver.get(server.url("/worker"))
    sign_in_at_idp(driver, "nils", "nils-pw")
    message = settled(driver, "signin-error").text
    assert "ikke adgang" in message, message
    assert session_cookie(driver) is None
    assert whoami_status(driver) == 401


def test_a_cancelled_idp_login_comes_back_with_a_reason(idp_server, browsers):
    server, _ = idp_server
    driver = browsers.open("deny", *SIZES["phone"])
    driver.get(server.url("/ops"))
    element(driver, "idp-sign-in").click()
    element(driver, "idp-deny").click()
    assert settled(driver, "signin-error").text
    assert session_cookie(driver) is None
