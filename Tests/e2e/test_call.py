"""Real calls through a real server: separate headless Chromium instances (fake camera and
microphone) run the worker and citizen pages against `samtalerum serve`. Covered: a full call
(video decoded both ways, hang-up, the session in the audit log), a citizen without camera or
without any device, the worker's join link, recovery after a server crash, and bad invites.

Run:  python3 -m pytest -v Tests/e2e/test_call.py
Needs: the server binary (SAMTALERUM_BIN, default .build/debug/samtalerum), Debian's chromium
and chromium-driver, PyPI selenium and pytest.
"""

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

REPO = Path(__file__).resolve().parents[2]
SERVER_BIN = Path(os.environ.get("SAMTALERUM_BIN", REPO / ".build/debug/samtalerum"))
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")

SERVER_START_TIMEOUT = 60
MEDIA_TIMEOUT = 30
UI_TIMEOUT = 15

INBOUND_VIDEO_STATS = """
const done = arguments[arguments.length - 1];
const pc = window.samtalerum && window.samtalerum.pc;
if (!pc) { done({error: 'no peer connection', state: window.samtalerum && window.samtalerum.state}); return; }
pc.getStats().then((report) => {
  const inbound = [];
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp') inbound.push({kind: s.kind, framesDecoded: s.framesDecoded || 0, bytesReceived: s.bytesReceived || 0});
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  });
  const describe = (id) => { const c = id && report.get(id); return c ? `${c.candidateType} ${c.address}:${c.port}/${c.protocol}` : null; };
  done({inbound, pair: pair && {local: describe(pair.localCandidateId), remote: describe(pair.remoteCandidateId)},
        state: window.samtalerum.state, connectionState: pc.connectionState});
}).catch((e) => done({error: String(e)}));
"""


def wait_until(predicate, timeout, interval=0.25, message="condition"):
    """Polls `predicate` until it returns something truthy; bounded by `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last value: {last!r}")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def insecure_context():
    # The server's certificate is self-signed and generated on first start.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, context=insecure_context(), timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class Server:
    def __init__(self, data_dir, port, log_path, extra_args=()):
        self.data_dir = data_dir
        self.port = port
        self.extra_args = list(extra_args)
        self.base_url = f"https://127.0.0.1:{port}"
        self.log_path = log_path
        self.process = None

    def url(self, path):
        return self.base_url + path

    def cli(self, *args, timeout=30):
        result = subprocess.run(
            [str(SERVER_BIN), *args, "--data-dir", str(self.data_dir)],
            capture_output=True, text=True, timeout=timeout,
        )
        assert result.returncode == 0, f"samtalerum {' '.join(args)} failed ({result.returncode}): {result.stderr}"
        return result.stdout

    def log_tail(self, lines=60):
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def start(self):
        log = open(self.log_path, "ab")  # a restart appends, so the whole story stays in one log
        self.process = subprocess.Popen(
            [str(SERVER_BIN), "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "--port", str(self.port),
             # Free TURN ports, so parallel test runs and a local coturn never collide.
             "--turn-port", "0", "--turns-port", "0", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()

        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                return http_get(self.url("/"), timeout=2)[0] == 200
            except (OSError, ssl.SSLError):
                return False

        wait_until(ready, SERVER_START_TIMEOUT, interval=0.5, message="the server to answer GET /")

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@pytest.fixture
def server(request):
    """A fresh server per test; indirect parametrization adds `serve` arguments."""
    if not SERVER_BIN.is_file():
        pytest.fail(f"server binary not found at {SERVER_BIN}: run `swift build --product samtalerum` or set SAMTALERUM_BIN")
    data_dir = Path(tempfile.mkdtemp(prefix="samtalerum-e2e-"))
    srv = Server(data_dir, free_port(), data_dir / "server.log", getattr(request, "param", ()))
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        print(f"--- server log tail ---\n{srv.log_tail()}")
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def worker_token(server):
    out = server.cli("token", "issue", "--role", "worker", "--subject", "w-e2e-tester", "--ttl", "3600")
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    assert lines, "token issue printed nothing"
    return lines[-1]


class Browsers:
    """Separate Chromium instances (own profile each), all quit at teardown."""

    def __init__(self):
        self.drivers = {}
        self.profiles = []
        self.logs = {}

    # What the browser's getUserMedia finds: a fake camera and microphone, only a fake
    # microphone (no video device), or no devices at all.
    MEDIA = {
        "camera+mic": ["--use-fake-device-for-media-stream"],
        "mic-only": ["--use-fake-device-for-media-stream=device-count=0"],
        "none": [],
    }

    def open(self, name, width=1280, height=800, media="camera+mic"):
        for path in (CHROMIUM, CHROMEDRIVER):
            if not Path(path).exists():
                pytest.fail(f"{path} missing: apt-get install -y chromium chromium-driver")
        profile = tempfile.mkdtemp(prefix=f"samtalerum-chromium-{name}-")
        self.profiles.append(profile)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", *self.MEDIA[media],
            "--use-fake-ui-for-media-stream", "--ignore-certificate-errors",
            f"--user-data-dir={profile}", f"--window-size={width},{height}",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(15)
        self.drivers[name] = driver
        self.logs[name] = []
        return driver

    def console(self, name):
        """Console lines so far (Chrome hands each line out once, so keep them)."""
        try:
            self.logs[name].extend(f"{e['level']} {e['message']}" for e in self.drivers[name].get_log("browser"))
        except WebDriverException:
            pass
        return self.logs[name]

    def all_console(self):
        return {name: self.console(name) for name in self.drivers}

    def close(self):
        for name, driver in self.drivers.items():
            lines = self.console(name)
            print(f"--- {name} console ---\n" + "\n".join(lines))
            try:
                driver.quit()
            except WebDriverException:
                pass
        self.drivers = {}
        for profile in self.profiles:
            shutil.rmtree(profile, ignore_errors=True)
        self.profiles = []


@pytest.fixture
def browsers():
    b = Browsers()
    try:
        yield b
    finally:
        b.close()


def element(driver, element_id, timeout=UI_TIMEOUT):
    """The element once it is displayed."""
    def shown():
        found = driver.find_elements(By.ID, element_id)
        return found[0] if found and found[0].is_displayed() else None
    return wait_until(shown, timeout, message=f"#{element_id} to be shown")


def state(driver):
    return driver.execute_script("return window.samtalerum ? window.samtalerum.state : null")


def wait_state(driver, wanted, timeout=UI_TIMEOUT):
    wanted = {wanted} if isinstance(wanted, str) else set(wanted)
    return wait_until(lambda: state(driver) in wanted and state(driver), timeout, message=f"state in {wanted}")


def video_stats(driver):
    return driver.execute_async_script(INBOUND_VIDEO_STATS)


def frames_decoded(stats):
    return sum(s["framesDecoded"] for s in (stats or {}).get("inbound", []) if s["kind"] == "video")


def csp_violations(lines):
    return [line for line in lines if "Content Security Policy" in line or "Refused to" in line]


def audit_sessions(server):
    """Sessions as the auditor CLI lists them (each look-up is itself recorded, with a purpose)."""
    return json.loads(server.cli("audit", "sessions", "--json", "--purpose", "end-to-end test"))


def field(record, *names):
    """The first present field among `names` (the CLI says `meeting`/`session`, the API `meetingId`)."""
    return next((record[name] for name in names if record.get(name) is not None), None)


def worker_opens_meeting(server, worker, worker_token, reload=True):
    """Through the worker page: sign in, create a meeting, read the invite link off the page,
    join. Returns the invite URL and the meeting id."""
    if reload:
        worker.get(server.url("/worker"))
    element(worker, "token-input").send_keys(worker_token)
    element(worker, "sign-in-button").click()
    element(worker, "citizen-ref").send_keys("SAG-2026-0042")
    element(worker, "create-meeting").click()
    invite_url = wait_until(lambda: element(worker, "invite-link").get_attribute("value"), UI_TIMEOUT,
                            message="the invite link")
    assert "/join#invite=" in invite_url, invite_url
    element(worker, "join-meeting-button").click()
    wait_state(worker, "waiting")
    meeting_id = urlsplit(worker.current_url).fragment.removeprefix("meeting=")
    assert meeting_id, worker.current_url
    return invite_url, meeting_id


def citizen_joins(citizen, invite_url):
    """Through the invite page: open the link, press the one button."""
    citizen.get(invite_url)
    element(citizen, "join-button").click()


def test_worker_and_citizen_see_and_hear_each_other_then_hang_up(server, worker_token, browsers):
    worker = browsers.open("worker")
    citizen = browsers.open("citizen")
    invite_url, meeting_id = worker_opens_meeting(server, worker, worker_token)
    citizen_joins(citizen, invite_url)
    both_present_at = time.monotonic()

    def both_decoding():
        w, c = video_stats(worker), video_stats(citizen)
        return (frames_decoded(w) > 0 and frames_decoded(c) > 0) and (w, c)

    try:
        worker_stats, citizen_stats = wait_until(both_decoding, MEDIA_TIMEOUT, interval=0.5,
                                                 message="video frames decoded on both sides")
    except AssertionError as err:
        raise AssertionError(f"{err}\nworker: {video_stats(worker)}\ncitizen: {video_stats(citizen)}\n"
                             f"consoles: {browsers.all_console()}\nserver:\n{server.log_tail()}") from None
    print(f"worker stats: {worker_stats}\ncitizen stats: {citizen_stats}")
    assert any(s["kind"] == "audio" and s["bytesReceived"] > 0 for s in worker_stats["inbound"]), worker_stats
    assert any(s["kind"] == "audio" and s["bytesReceived"] > 0 for s in citizen_stats["inbound"]), citizen_stats
    wait_state(worker, "connected")
    wait_state(citizen, "connected")

    session_id = worker.execute_script("return window.samtalerum.sessionId")
    assert session_id and session_id == citizen.execute_script("return window.samtalerum.sessionId")

    # A session shorter than a second could round to 0 s; the audit must show a real length.
    time.sleep(max(0.0, 2.5 - (time.monotonic() - both_present_at)))

    element(worker, "hangup-button").click()
    wait_state(worker, "ended")
    wait_state(citizen, "peer-left")
    assert "Den anden deltager har forladt samtalen" in element(citizen, "call-status").text

    consoles = browsers.all_console()
    for name, lines in consoles.items():
        assert not csp_violations(lines), f"{name}: {csp_violations(lines)}"

    # The audit CLI refuses to open the store while the server holds it (one writer only), so
    # the server stops first. The browsers go before it: their idle keep-alive connections can
    # hold up its graceful shutdown for ~100 s (a server issue, reported separately).
    element(citizen, "hangup-button").click()
    wait_state(citizen, "ended")
    browsers.close()
    server.stop()
    assert server.process.returncode == 0, f"server exit {server.process.returncode}:\n{server.log_tail()}"
    sessions = [s for s in audit_sessions(server) if field(s, "meetingId", "meeting") == meeting_id]
    assert len(sessions) == 1, sessions
    session = sessions[0]
    assert field(session, "sessionId", "session") == session_id, session
    assert session["startedAt"]
    assert session["durationSeconds"] >= 1, session
    assert session["endedAt"], session
    assert session["endReason"] == "hangup", session
    print(f"audit session: {session}")


@pytest.mark.parametrize("media, notice", [
    ("mic-only", "Samtalen fortsætter kun med lyd"),
    ("none", "Du kan stadig se og høre den anden"),
], ids=["mic-only", "no-devices"])
def test_citizen_without_camera_still_sees_the_worker(server, worker_token, browsers, media, notice):
    worker = browsers.open("worker")
    citizen = browsers.open("citizen", media=media)
    invite_url, _ = worker_opens_meeting(server, worker, worker_token)
    citizen_joins(citizen, invite_url)

    wait_until(lambda: frames_decoded(video_stats(citizen)) > 0, MEDIA_TIMEOUT, interval=0.5,
               message=f"the citizen ({media}) to decode the worker's video")
    wait_state(worker, "connected")
    wait_state(citizen, "connected")
    assert notice in element(citizen, "call-notice").text
    assert not citizen.find_element(By.ID, "camera-button").is_displayed()
    # The worker is told why there is no picture instead of looking at a black box.
    assert "ikke kamera" in element(worker, "remote-placeholder").text
    if media == "mic-only":
        wait_until(lambda: any(s["kind"] == "audio" and s["bytesReceived"] > 0
                               for s in video_stats(worker)["inbound"]), MEDIA_TIMEOUT,
                   message="the worker to receive the citizen's audio")
    assert frames_decoded(video_stats(worker)) == 0


# Test-side only: makes the page's RTCPeerConnection use relayed candidates and nothing else.
FORCE_RELAY = """
const Original = window.RTCPeerConnection;
window.RTCPeerConnection = function (config) { return new Original({...config, iceTransportPolicy: 'relay'}); };
window.RTCPeerConnection.prototype = Original.prototype;
"""


# Both relay allocations live on 127.0.0.1, so the relay must be allowed to reach loopback.
@pytest.mark.parametrize("server", [["--turn-allow-loopback-peers"]], indirect=True, ids=["relay-only"])
def test_call_through_the_built_in_turn_relay(server, worker_token, browsers):
    worker = browsers.open("worker")
    citizen = browsers.open("citizen")
    worker.get(server.url("/worker"))
    worker.execute_script(FORCE_RELAY)
    invite_url, _ = worker_opens_meeting(server, worker, worker_token, reload=False)
    citizen.get(invite_url)
    citizen.execute_script(FORCE_RELAY)
    element(citizen, "join-button").click()

    def both_decoding():
        w, c = video_stats(worker), video_stats(citizen)
        return (frames_decoded(w) > 0 and frames_decoded(c) > 0) and (w, c)
    try:
        worker_stats, citizen_stats = wait_until(both_decoding, MEDIA_TIMEOUT, interval=0.5,
                                                 message="video through the relay on both sides")
    except AssertionError as err:
        raise AssertionError(f"{err}\nworker: {video_stats(worker)}\ncitizen: {video_stats(citizen)}\n"
                             f"consoles: {browsers.all_console()}\nserver:\n{server.log_tail()}") from None
    print(f"relayed: worker {worker_stats['pair']}, citizen {citizen_stats['pair']}")
    for stats in (worker_stats, citizen_stats):
        assert stats["pair"] and stats["pair"]["local"].startswith("relay "), stats


def test_worker_join_url_goes_straight_to_the_call_after_sign_in(server, worker_token, browsers):
    request = urllib.request.Request(
        server.url("/api/meetings"), method="POST", data=json.dumps({"citizenRef": "SAG-2026-0043"}).encode(),
        headers={"Authorization": f"Bearer {worker_token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=insecure_context(), timeout=5) as response:
        assert response.status == 201
        meeting = json.load(response)

    worker = browsers.open("worker")
    worker.get(meeting["workerJoinUrl"])
    element(worker, "token-input").send_keys(worker_token)
    element(worker, "sign-in-button").click()
    wait_state(worker, "waiting")
    assert meeting["meetingId"] in element(worker, "meeting-title").text

    citizen = browsers.open("citizen", width=390, height=844)
    citizen_joins(citizen, meeting["citizenInviteUrl"])
    wait_state(worker, "connected", MEDIA_TIMEOUT)
    wait_state(citizen, "connected", MEDIA_TIMEOUT)


def test_call_comes_back_by_itself_after_the_server_restarts(server, worker_token, browsers):
    worker = browsers.open("worker")
    citizen = browsers.open("citizen")
    invite_url, _ = worker_opens_meeting(server, worker, worker_token)
    citizen_joins(citizen, invite_url)
    wait_state(worker, "connected", MEDIA_TIMEOUT)
    wait_state(citizen, "connected", MEDIA_TIMEOUT)

    # A crash, not a clean stop: the pages must notice and rejoin on their own.
    server.process.kill()
    server.process.wait(timeout=5)
    wait_state(worker, "reconnecting")
    wait_state(citizen, "reconnecting")
    server.start()

    def both_back():
        w, c = video_stats(worker), video_stats(citizen)
        return w.get("state") == "connected" and c.get("state") == "connected" \
            and frames_decoded(w) > 0 and frames_decoded(c) > 0
    wait_until(both_back, MEDIA_TIMEOUT, interval=0.5, message="both pages back in a call with video")


def forged_invite():
    """A well-formed JWT with a plausible body and a signature the server never made."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": "citizen", "role": "citizen", "mid": "m-7kq2ztc8xw3nf5hgd9pa",
                           "exp": int(time.time()) + 3600}).encode())
    return f"{header}.{body}.{b64(os.urandom(32))}"


@pytest.mark.parametrize("invite", ["garbled.not-a-token!", "forged"])
def test_bad_invite_shows_friendly_message_and_server_keeps_serving(server, browsers, invite):
    token = forged_invite() if invite == "forged" else invite
    citizen = browsers.open("citizen")
    citizen.get(server.url(f"/join#invite={token}"))
    message = element(citizen, "invite-error")
    assert "Linket virker ikke" in message.text
    assert citizen.execute_script("return window.samtalerum.error") == "token-invalid"
    assert not element(citizen, "invalid-view").find_elements(By.TAG_NAME, "button")

    assert server.process.poll() is None, server.log_tail()
    assert http_get(server.url("/join"))[0] == 200
    assert not csp_violations(browsers.console("citizen"))


def test_invite_page_without_token_explains_and_landing_page_leads_to_worker_page(server, browsers):
    browser = browsers.open("visitor", width=390, height=844)
    browser.get(server.url("/join"))
    assert "Linket mangler" in element(browser, "invite-error").text

    browser.get(server.url("/"))
    element(browser, "worker-link").click()
    assert element(browser, "token-input")
    assert urlsplit(browser.current_url).path == "/worker"
    lines = browsers.console("visitor")
    assert not [line for line in lines if line.startswith("SEVERE")], lines
