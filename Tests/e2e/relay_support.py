"""Helpers for test_relay_browser.py: a `samtalerum serve` whose relay ports are read off its
stdout, headless Chromium instances that can only use one TURN transport, and the
getStats() read-out of the selected candidate pair. Its own server and browser classes (not the
conftest fixtures), so changes to the shared browser fixtures do not move under this test; the
binary staging and paths are conftest's.
"""

import json
import os
import random
import re
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import CHROMEDRIVER, CHROMIUM, free_port, wait_until
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

RELAY_LINE = re.compile(r"TURN relay listening: udp (\d+), tcp (\d+), tls (\d+)")
LISTEN_LINE = re.compile(r"Samtalerum is listening on (https://\S+?)/?\s")


class RelayNamespace:
    """A network namespace linked to this host by one veth pair in 203.0.113.0/24 (a /30 of its
    own, names unique per run): a server started in it has a real, non-loopback address, and the
    host reaches it directly over the link. `with RelayNamespace() as ns:`; leaving deletes both."""

    def __init__(self):
        tag = f"{os.getpid() % 100000:05d}{random.randrange(16 ** 3):03x}"
        self.name = f"samrel-{tag}"
        self.host_link, self.namespace_link = f"srh{tag}", f"srn{tag}"
        block = 4 * random.randrange(1, 63)
        self.host_ip, self.ip = f"203.0.113.{block + 1}", f"203.0.113.{block + 2}"

    @staticmethod
    def _ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)

    def __enter__(self):
        try:
            self._ip("netns", "add", self.name)
            self._ip("link", "add", self.host_link, "type", "veth", "peer", "name", self.namespace_link)
            self._ip("link", "set", self.namespace_link, "netns", self.name)
            self._ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_link)
            self._ip("link", "set", self.host_link, "up")
            self._ip("-n", self.name, "addr", "add", f"{self.ip}/30", "dev", self.namespace_link)
            self._ip("-n", self.name, "link", "set", self.namespace_link, "up")
            self._ip("-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        # Deleting the namespace deletes its end of the pair, and with it the host's end.
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True, timeout=30)

    def command(self, *args):
        return ["ip", "netns", "exec", self.name, *args]


class RelayServer:
    """`samtalerum serve` on 127.0.0.1 with free HTTPS and TURN ports and loopback peers allowed
    (both browsers' relay addresses are on 127.0.0.1); or, given a `RelayNamespace`, inside it on
    its 203.0.113.x address with the default peer policy (no loopback peers)."""

    def __init__(self, work_dir, binary, env=None, namespace=None):
        self.binary = binary
        self.namespace = namespace
        self.host = namespace.ip if namespace else "127.0.0.1"
        self.data_dir = work_dir / "data"
        self.data_dir.mkdir()
        self.log_path = work_dir / "server.log"
        self.port = free_port()
        self.env = {**os.environ, "SAMTALERUM_SIGNALLING_AUTO_ADMIT": "true", **(env or {})}
        self.process = None
        self.base_url = None
        self.relay_ports = None

    def cli(self, *args, timeout=30):
        result = subprocess.run([str(self.binary), *args, "--data-dir", str(self.data_dir)],
                                capture_output=True, text=True, timeout=timeout, env=self.env)
        assert result.returncode == 0, f"samtalerum {' '.join(args)} failed ({result.returncode}): {result.stderr}"
        return result.stdout

    def token(self, role, subject):
        lines = [line.strip() for line in self.cli("token", "issue", "--role", role, "--subject", subject,
                                                   "--ttl", "3600").splitlines() if line.strip()]
        assert lines, "token issue printed nothing"
        return lines[-1]

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log().splitlines()[-lines:]) or "(no server log)"

    def start(self, timeout=60):
        command = [str(self.binary), "serve", "--data-dir", str(self.data_dir), "--host", self.host,
                   "--port", str(self.port), "--turn-port", "0", "--turns-port", "0"]
        if self.namespace:
            command = self.namespace.command(*command)
        else:
            command.append("--turn-allow-loopback-peers")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.env)

        def announced():
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            text = self.log()
            relay, listen = RELAY_LINE.search(text), LISTEN_LINE.search(text)
            return relay and listen and (relay, listen)

        relay, listen = wait_until(announced, timeout, interval=0.2, message="the server's listening lines")
        self.relay_ports = {"udp": int(relay[1]), "tcp": int(relay[2]), "tls": int(relay[3])}
        assert all(self.relay_ports.values()), self.relay_ports
        # The announced URL carries the public host; requests go to the address it listens on.
        self.base_url = f"https://{self.host}:{self.port}"
        wait_until(lambda: self.get("/")[0] == 200, 15, interval=0.3, message="GET / to answer")
        return listen[1]

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after `timeout` s; returns how it ended, for the report."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else f"exited {self.process.returncode} before stop"
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
            return f"exit {self.process.returncode} {time.monotonic() - started:.1f}s after SIGTERM"
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            return f"killed: no exit {timeout}s after SIGTERM"

    def url(self, path):
        return self.base_url + path

    def request(self, method, path, token=None, body=None, timeout=5):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url(path), method=method, data=data, headers=headers)
        # The relay certificate under test is not the concern here: the API is plain HTTPS.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except (OSError, ssl.SSLError) as err:
            return 0, str(err).encode()

    def get(self, path, token=None):
        return self.request("GET", path, token)


# Runs before any page script: every RTCPeerConnection the page makes may use relayed
# candidates only, through the TURN URLs of one transport. `__RELAY_URL__` is replaced by a
# predicate on a URL. ICE candidate errors are kept for the failure message.
FORCE_RELAY_TEMPLATE = """
(() => {
  const Original = window.RTCPeerConnection;
  const keep = (url) => __RELAY_URL__;
  window.__relayTest = {iceServers: null, candidateErrors: []};
  function Forced(config = {}) {
    const iceServers = (config.iceServers || []).map((server) => {
      const urls = [].concat(server.urls || []).filter(keep);
      return {...server, urls};
    }).filter((server) => server.urls.length > 0);
    window.__relayTest.iceServers = iceServers.map((s) => s.urls);
    const pc = new Original({...config, iceServers, iceTransportPolicy: 'relay'});
    pc.addEventListener('icecandidateerror', (e) => {
      window.__relayTest.candidateErrors.push({url: e.url, code: e.errorCode, text: e.errorText});
    });
    return pc;
  }
  Forced.prototype = Original.prototype;
  Object.setPrototypeOf(Forced, Original);
  window.RTCPeerConnection = Forced;
})();
"""

TRANSPORT_FILTERS = {
    "udp": "url.startsWith('turn:') && url.endsWith('?transport=udp')",
    "tcp": "url.startsWith('turn:') && url.endsWith('?transport=tcp')",
    "tls": "url.startsWith('turns:') && url.endsWith('?transport=tcp')",
}

# Inbound video and the selected pair's local and remote candidates, from the page's own
# peer connection (the pages expose it as window.samtalerum.pc for tests).
CALL_STATS = """
const done = arguments[arguments.length - 1];
const hook = window.samtalerum;
const pc = hook && hook.pc;
const relay = window.__relayTest || null;
if (!pc) { done({error: 'no peer connection', state: hook && hook.state, relay}); return; }
pc.getStats().then((report) => {
  let framesDecoded = 0, videoBytes = 0, pair = null, nominated = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') { framesDecoded += s.framesDecoded || 0; videoBytes += s.bytesReceived || 0; }
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') nominated = nominated || s;
  });
  pair = pair || nominated;
  const candidate = (id) => {
    const c = id && report.get(id);
    return c ? {candidateType: c.candidateType, relayProtocol: c.relayProtocol || null, protocol: c.protocol,
                address: c.address, port: c.port, url: c.url || null} : null;
  };
  done({framesDecoded, videoBytes, state: hook.state, connectionState: pc.connectionState,
        pair: pair ? {local: candidate(pair.localCandidateId), remote: candidate(pair.remoteCandidateId),
                      bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived} : null,
        relay});
}).catch((e) => done({error: String(e), relay}));
"""


class Browser:
    """One headless Chromium with its own profile (and, if given, its own HOME, whose NSS
    database decides which CAs it trusts)."""

    def __init__(self, name, work_dir, home=None, log_file=None, ignore_certificate_errors=True):
        self.name = name
        profile = work_dir / f"chromium-{name}"
        profile.mkdir()
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                    f"--user-data-dir={profile}", "--window-size=1024,700"):
            options.add_argument(arg)
        if ignore_certificate_errors:
            options.add_argument("--ignore-certificate-errors")
        if log_file:
            options.add_argument("--enable-logging=stderr")
            options.add_argument("--v=0")
            options.add_argument("--vmodule=*turn*=3,*tls*=3,*ssl*=2,*p2p*=2")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        env = {**os.environ, **({"HOME": str(home)} if home else {})}
        service = Service(CHROMEDRIVER, env=env, log_output=str(log_file) if log_file else subprocess.DEVNULL,
                          service_args=["--enable-chrome-logs"] if log_file else None)
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(30)
        self.driver.set_script_timeout(15)
        self.console_lines = []

    def force_relay(self, transport):
        source = FORCE_RELAY_TEMPLATE.replace("__RELAY_URL__", TRANSPORT_FILTERS[transport])
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    def stats(self):
        return self.driver.execute_async_script(CALL_STATS)

    def state(self):
        return self.driver.execute_script("return window.samtalerum ? window.samtalerum.state : null")

    def element(self, element_id, timeout=15):
        def shown():
            found = self.driver.find_elements(By.ID, element_id)
            return found[0] if found and found[0].is_displayed() else None
        return wait_until(shown, timeout, message=f"#{element_id} on the {self.name} page")

    def console(self):
        try:
            self.console_lines.extend(f"{e['level']} {e['message']}" for e in self.driver.get_log("browser"))
        except WebDriverException:
            pass
        return self.console_lines

    def quit(self):
        self.console()
        try:
            self.driver.quit()
        except WebDriverException:
            pass


def make_test_ca(folder):
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost, with the openssl CLI."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)
    ca_key, ca_pem = folder / "ca.key", folder / "ca.pem"
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    ext = folder / "server.ext"
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(ca_key),
        "-out", str(ca_pem), "-days", "2", "-subj", "/CN=Samtalerum e2e test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
        "-out", str(csr), "-subj", "/CN=localhost")
    ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return ca_pem, cert, key


def nss_home(folder, ca_pem):
    """A HOME whose NSS database (where Chromium on Linux looks for user-trusted CAs) trusts
    `ca_pem` for TLS servers."""
    db = folder / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-N", "--empty-password"], check=True, capture_output=True, timeout=30)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "samtalerum-e2e-ca", "-i", str(ca_pem)],
                   check=True, capture_output=True, timeout=30)
    return folder


STATUS_LINE = re.compile(r"relay status listening on (http://\S+/health/ready)")


class RelayLAN:
    """Relay nodes on one LAN segment: a namespace holding a bridge, one namespace per relay and
    this host each linked to it by a veth pair, all in one /28 of 203.0.113.0/24 (names unique
    per run). The host is .1 of the block, the relays .2, .3, …; they reach each other directly,
    as relays on one data-centre network do, and the host reaches every one of them."""

    def __init__(self, relays=2):
        tag = f"{os.getpid() % 100000:05d}{random.randrange(16 ** 3):03x}"
        self.tag = tag
        self.lan = f"samlan-{tag}"
        block = 16 * random.randrange(1, 15)
        self.host_ip = f"203.0.113.{block + 1}"
        self.host_link = f"slh{tag}"
        self.nodes = [{"name": f"samnode{index}-{tag}", "ip": f"203.0.113.{block + 2 + index}", "link": f"sl{index}{tag}"}
                      for index in range(relays)]
        self.ips = [node["ip"] for node in self.nodes]

    _ip = staticmethod(RelayNamespace._ip)

    def __enter__(self):
        try:
            self._ip("netns", "add", self.lan)
            self._ip("-n", self.lan, "link", "add", "br0", "type", "bridge")
            self._ip("-n", self.lan, "link", "set", "br0", "up")
            self._ip("link", "add", self.host_link, "type", "veth", "peer", "name", "hostport", "netns", self.lan)
            self._ip("addr", "add", f"{self.host_ip}/28", "dev", self.host_link)
            self._ip("link", "set", self.host_link, "up")
            self._ip("-n", self.lan, "link", "set", "hostport", "master", "br0", "up")
            for index, node in enumerate(self.nodes):
                self._ip("netns", "add", node["name"])
                self._ip("-n", node["name"], "link", "add", "eth0", "type", "veth", "peer", "name", f"port{index}",
                         "netns", self.lan)
                self._ip("-n", self.lan, "link", "set", f"port{index}", "master", "br0", "up")
                self._ip("-n", node["name"], "addr", "add", f"{node['ip']}/28", "dev", "eth0")
                self._ip("-n", node["name"], "link", "set", "eth0", "up")
                self._ip("-n", node["name"], "link", "set", "lo", "up")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        # A namespace takes its veth ends with it, and a pair goes when either end does.
        for node in self.nodes:
            subprocess.run(["ip", "netns", "del", node["name"]], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.lan], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True, timeout=30)

    def command(self, index, *args):
        return ["ip", "netns", "exec", self.nodes[index]["name"], *args]


class RelayNodeProcess:
    """`samtalerum relay` with the REST secret of `secret_from` (a signalling node's data dir),
    on `host` (or inside `wrap`'s namespace); its ports and status URL are read off its stdout."""

    def __init__(self, work_dir, binary, name, secret_from, host="127.0.0.1", wrap=None, turn_port=0, tls_port=0,
                 status_port=0, env=None):
        self.name = name
        self.data_dir = work_dir / name
        (self.data_dir / "keys").mkdir(parents=True)
        secret = self.data_dir / "keys" / "turn.secret"
        secret.write_bytes((Path(secret_from) / "keys" / "turn.secret").read_bytes())
        secret.chmod(0o600)
        self.log_path = work_dir / f"{name}.log"
        self.command = [str(binary), "relay", "--data-dir", str(self.data_dir), "--listen-host", host,
                        "--turn-port", str(turn_port), "--turns-port", str(tls_port), "--status-port", str(status_port)]
        if wrap:
            self.command = wrap(*self.command)
        self.env = {**os.environ, "SAMTALERUM_TURN_STATUS_HOST": host, **(env or {})}
        self.host = host
        self.process = None
        self.ports = None
        self.status_url = None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self, timeout=60):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.env)

        def announced():
            if self.process.poll() is not None:
                raise AssertionError(f"relay {self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            text = self.log()
            relay, status = RELAY_LINE.search(text), STATUS_LINE.search(text)
            return relay and status and (relay, status)

        relay, status = wait_until(announced, timeout, interval=0.2, message=f"relay {self.name}'s listening lines")
        self.ports = {"udp": int(relay[1]), "tcp": int(relay[2]), "tls": int(relay[3])}
        self.status_url = status[1]
        wait_until(lambda: (self.status() or {}).get("status") == "ready", 15, message=f"relay {self.name} ready")
        return self

    def status(self):
        """/health/ready's JSON, or None when it does not answer 200."""
        try:
            with urllib.request.urlopen(self.status_url, timeout=2) as response:
                return json.load(response) if response.status == 200 else None
        except (OSError, ValueError):
            return None

    def signal(self, number):
        self.process.send_signal(number)

    def stop(self, timeout=15):
        """SIGTERM; the exit code (killed after `timeout` s: None)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
                return None
        return self.process.returncode


class Coturn:
    """coturn's turnserver sharing our REST secret (`--use-auth-secret --static-auth-secret`),
    UDP and TCP on `host:port`, inside `wrap`'s namespace if given."""

    def __init__(self, work_dir, secret_from, host, port=3478, wrap=None, ports=(49160, 49400)):
        self.folder = work_dir / "coturn"
        self.folder.mkdir()
        self.log_path = self.folder / "turnserver.log"
        secret = (Path(secret_from) / "keys" / "turn.secret").read_text().strip()
        self.command = ["turnserver", "-n", f"--listening-ip={host}", f"--relay-ip={host}", f"--listening-port={port}",
                        f"--min-port={ports[0]}", f"--max-port={ports[1]}", "--use-auth-secret",
                        f"--static-auth-secret={secret}", "--realm=samtalerum", "--no-tls", "--no-dtls", "--no-cli",
                        "--log-file=stdout", "--simple-log", f"--db={self.folder / 'turndb'}",
                        f"--pidfile={self.folder / 'turnserver.pid'}"]
        if wrap:
            self.command = wrap(*self.command)
        self.host, self.port = host, port
        self.process = None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self, timeout=30):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(lambda: self.process.poll() is None and "Total General servers" in self.log() or self._exited(), timeout,
                   message="coturn to start")
        return self

    def _exited(self):
        if self.process.poll() is not None:
            raise AssertionError(f"coturn exited with {self.process.returncode}:\n{self.log()[-3000:]}")
        return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
