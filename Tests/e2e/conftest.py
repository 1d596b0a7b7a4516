"""Shared fixtures and helpers for the browser end-to-end tests: a real `samtalerum serve`
per test (or one shared per session), separate headless Chromium instances with fake devices,
and small bounded waits. Tests/e2e/turn has fixtures of its own (relay, peer) and uses none
of these.

The server binary is SAMTALERUM_BIN (default .build/debug/samtalerum). Its pages are bundled
at build time; so that a test always checks the pages in Sources/SamtalerumApp/Web, the
binary is staged in a temporary folder next to a copy of those sources (SwiftPM's resource
accessor prefers a bundle beside the executable). SAMTALERUM_WEB=build uses the built copy.
"""

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import struct
import tempfile
import threading
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

WEB_SOURCES = REPO / "Sources/SamtalerumApp/Web"
RESOURCE_BUNDLE = "Samtalerum_SamtalerumApp.resources"

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
  const describe = (id) => { const c = id && report.get(id); return c ? `${c.candidateType} ${c.address}:${c.port}/${c.protocol}${c.relayProtocol ? ' via ' + c.relayProtocol : ''}` : null; };
  done({inbound, pair: pair && {local: describe(pair.localCandidateId), remote: describe(pair.remoteCandidateId)},
        state: window.samtalerum.state, connectionState: pc.connectionState});
}).catch((e) => done({error: String(e)}));
"""

# Mesh calls: decoded video frames per connection, keyed by the other participant's peer id.
VIDEO_FRAMES_BY_PEER = """
const done = arguments[arguments.length - 1];
const hook = window.samtalerum;
if (!hook) { done({error: 'no hook'}); return; }
const peers = hook.peers;
const pcs = hook.pcs;
Promise.all(pcs.map((pc) => pc.getStats())).then((reports) => {
  const frames = {};
  reports.forEach((report, i) => {
    let decoded = 0;
    report.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') decoded += s.framesDecoded || 0; });
    frames[peers[i].peer] = decoded;
  });
  done({frames, peers, state: hook.state});
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


_staged = {}


def server_binary():
    """The binary to run: staged beside the current page sources unless SAMTALERUM_WEB=build."""
    if not SERVER_BIN.is_file():
        pytest.fail(f"server binary not found at {SERVER_BIN}: run `swift build --product samtalerum` or set SAMTALERUM_BIN")
    if os.environ.get("SAMTALERUM_WEB") == "build":
        return SERVER_BIN
    if "bin" not in _staged:
        folder = Path(tempfile.mkdtemp(prefix="samtalerum-e2e-bin-"))
        staged = folder / SERVER_BIN.name
        # A copy, not a link: the lead's next build may rewrite the binary in place.
        shutil.copy2(SERVER_BIN, staged)
        for bundle in SERVER_BIN.parent.glob("*.resources"):
            shutil.copytree(bundle, folder / bundle.name)
        shutil.rmtree(folder / RESOURCE_BUNDLE / "Web", ignore_errors=True)
        shutil.copytree(WEB_SOURCES, folder / RESOURCE_BUNDLE / "Web")
        _staged["bin"] = staged
        _staged["folder"] = folder
    return _staged["bin"]


def pytest_sessionfinish(session, exitstatus):
    if "folder" in _staged:
        shutil.rmtree(_staged["folder"], ignore_errors=True)


class Server:
    def __init__(self, data_dir, port, log_path, extra_args=(), env=None):
        self.env = {**os.environ, **(env or {})}
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
            [str(server_binary()), *args, "--data-dir", str(self.data_dir)],
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
            [str(server_binary()), "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "--port", str(self.port),
             # Free TURN ports, so parallel test runs and a local coturn never collide.
             "--turn-port", "0", "--turns-port", "0", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
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


def running_server(extra_args=(), env=None):
    data_dir = Path(tempfile.mkdtemp(prefix="samtalerum-e2e-"))
    srv = Server(data_dir, free_port(), data_dir / "server.log", extra_args, env)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        print(f"--- server log tail ---\n{srv.log_tail()}")
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def server(request):
    """A fresh server per test (for tests that stop it, read its audit log or restart it);
    indirect parametrization adds `serve` arguments."""
    yield from running_server(getattr(request, "param", ()))


@pytest.fixture(scope="session")
def shared_server():
    """One server for the tests that only need a working server; each makes its own meeting."""
    yield from running_server()


def issue_token(server, role="worker", subject="w-e2e-tester"):
    out = server.cli("token", "issue", "--role", role, "--subject", subject, "--ttl", "3600")
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    assert lines, "token issue printed nothing"
    return lines[-1]


@pytest.fixture
def worker_token(server):
    return issue_token(server)


@pytest.fixture(scope="session")
def shared_worker_token(shared_server):
    return issue_token(shared_server)


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
        # Camera and microphone present, but the person answers "Bloker" to the browser's question.
        "denied": ["--use-fake-device-for-media-stream", "--deny-permission-prompts"],
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
            *([] if media == "denied" else ["--use-fake-ui-for-media-stream"]), "--ignore-certificate-errors",
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


def sign_in_worker(worker, url, token):
    """Opens `url` (a worker page) and signs in by pasting `token`."""
    worker.get(url)
    element(worker, "token-input").send_keys(token)
    element(worker, "sign-in-button").click()


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


def citizen_joins(citizen, invite_url, worker=None):
    """Through the invite page: open the link, press the one button. With `worker`, the
    worker then lets the citizen in from the waiting room (the server's default)."""
    citizen.get(invite_url)
    element(citizen, "join-button").click()
    if worker is not None:
        worker_admits(worker)


def worker_admits(worker):
    element(worker, "admit-button", MEDIA_TIMEOUT).click()


def create_meeting(server, token, citizen_ref="SAG-2026-0043"):
    request = urllib.request.Request(
        server.url("/api/meetings"), method="POST", data=json.dumps({"citizenRef": citizen_ref}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=insecure_context(), timeout=5) as response:
        assert response.status == 201
        return json.load(response)


def invite_guest(server, token, meeting_id, guest_ref="JC-2026-0007"):
    """POST /api/meetings/{id}/guests (mesh extension): the guest's own invite."""
    request = urllib.request.Request(
        server.url(f"/api/meetings/{meeting_id}/guests"), method="POST", data=json.dumps({"guestRef": guest_ref}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=insecure_context(), timeout=5) as response:
        assert response.status == 201
        return json.load(response)


def ws_url(server):
    return server.url("/ws").replace("https://", "wss://")


async def expect_type(ws, wanted, timeout=15):
    """The next message of type `wanted` on an asyncio `websockets` connection, skipping others
    (e.g. `quality`), within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {wanted} within {timeout} s"
        message = json.loads(await asyncio.wait_for(ws.recv(), left))
        if message["type"] == wanted:
            return message


async def enter(ws, token, meeting_id=None):
    """hello with `token`, then join (the worker names `meeting_id`): what `joined` said."""
    await ws.send(json.dumps({"type": "hello", "v": 1, "token": token}))
    await expect_type(ws, "welcome")
    await ws.send(json.dumps({"type": "join", **({"meetingId": meeting_id} if meeting_id else {})}))
    return await expect_type(ws, "joined")


def admit_until_joined(worker, timeout):
    """Sends `admit` on the worker's synchronous `websockets` connection until it hears
    `peer-joined`; `not-waiting` means the citizen's join has not landed yet, so it tries again."""
    def admitted():
            worker.send(json.dumps({"type": "admit"}))
            for _ in range(20):
                message = json.loads(worker.recv(timeout=10))
                if message["type"] == "peer-joined":
                    return True
                if message["type"] == "error" and message.get("code") == "not-waiting":
                    return False
            return False
    wait_until(admitted, timeout, interval=0.5, message="the session to start")


def frames_by_peer(driver):
    """Decoded video frames per connection of a (mesh) call: {peer id: frames}."""
    return driver.execute_async_script(VIDEO_FRAMES_BY_PEER).get("frames") or {}


def both_decoding(worker, citizen, minimum=(1, 1)):
    w, c = video_stats(worker), video_stats(citizen)
    return (frames_decoded(w) >= minimum[0] and frames_decoded(c) >= minimum[1]) and (w, c)


def wait_both_decoding(worker, citizen, browsers, server, minimum=(1, 1), message="video frames decoded on both sides"):
    try:
        return wait_until(lambda: both_decoding(worker, citizen, minimum), MEDIA_TIMEOUT, interval=0.5, message=message)
    except AssertionError as err:
        raise AssertionError(f"{err}\nworker: {video_stats(worker)}\ncitizen: {video_stats(citizen)}\n"
                             f"consoles: {browsers.all_console()}\nserver:\n{server.log_tail()}") from None


def hook(driver, name):
    return driver.execute_script(f"return window.samtalerum ? window.samtalerum.{name} : null")




class CuttableProxy:
    """A TCP forwarder in front of the server (TLS passes through untouched). `cut()` resets
    every connection through it and refuses new ones for a while: to the page and the server
    this is a dropped network, not a closed WebSocket."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs = []
        self.down_until = 0.0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path):
        return f"https://127.0.0.1:{self.port}{path}"

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:
                self._reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._reset(client)
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @staticmethod
    def _reset(sock):
        # Linger 0 makes close() send RST: no FIN, no WebSocket close frame.
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError:
            pass

    def cut(self, seconds):
        self.down_until = time.monotonic() + seconds
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for client, upstream in pairs:
            self._reset(client)
            self._reset(upstream)
        return len(pairs)

    def close(self):
        self.closed = True
        self.cut(0)
        self.listener.close()


AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then((r) => done(r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 200))}))))
  .catch((e) => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));
"""


def axe_source():
    """axe-core's axe.min.js from PyPI (no npm registry here): axe-playwright-python ships 4.x
    (`pip install --no-deps axe-playwright-python`, only its file is used), else the 3.x of
    axe-selenium-python, which knows fewer rules and no WCAG 2.1 A / 2.2 tags."""
    if "axe" not in _staged:
        import importlib.util
        for package, relative in (("axe_playwright_python", "axe.min.js"),
                                  ("axe_selenium_python", "node_modules/axe-core/axe.min.js")):
            spec = importlib.util.find_spec(package)
            if spec and spec.submodule_search_locations:
                path = Path(list(spec.submodule_search_locations)[0]) / relative
                if path.is_file():
                    _staged["axe"] = path.read_text()
                    break
        else:
            # Scripts/install-test-deps installs it; in CI a missing checker is a failure, not a skip.
            missing = "pip install --no-deps axe-playwright-python (or axe-selenium-python) for axe.min.js"
            if os.environ.get("CI"):
                pytest.fail(missing)
            pytest.skip(missing)
    return _staged["axe"]


def axe_violations(driver, serious_only=True):
    """axe-core's WCAG 2.x A/AA violations on the page as it is now."""
    driver.execute_script(axe_source())
    version = driver.execute_script("return axe.version")
    tags = AXE_TAGS if not version.startswith(("2.", "3.")) else ["wcag2a", "wcag2aa", "wcag21aa"]
    violations = driver.execute_async_script(AXE_RUN, tags)
    if serious_only:
        violations = [v for v in violations if v["impact"] in ("serious", "critical")]
    return violations
