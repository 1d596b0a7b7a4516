"""The relay against an adversary and against coturn, with the built server and real clients:
the pre-call check's credentials (token, per-address limit, own quota, lifetime cap), signed
errors, limited unauthenticated replies, 420, counted Send indications, a left participant's
credentials refused, and the REST secret file that coturn takes as it is.

    SAMTALERUM_BIN=.build/debug/samtalerum python3 -m pytest -q Tests/e2e/turn/test_turn_hardening.py

Several tests use their own source address in 127.0.0.0/8: per-address limits are then per test.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time

import pytest

import stun_client as stun

HOST = "127.0.0.1"
UCLIENT = shutil.which("turnutils_uclient")
PEER = shutil.which("turnutils_peer")
TURNSERVER = shutil.which("turnserver")


def free_port():
    """A port free for TCP and UDP on HOST (the relay takes both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((HOST, 0))
            port = u.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind((HOST, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def binary():
    path = os.environ.get("SAMTALERUM_BIN")
    if not path:
        pytest.skip("SAMTALERUM_BIN not set (path to the built samtalerum binary)")
    return path


def wait_until(predicate, timeout, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class Server:
    """`samtalerum serve` on 127.0.0.1: HTTPS, TURN on UDP/TCP and TLS; loopback peers allowed
    so coturn's peer on 127.0.0.1 can echo."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="turn-hardening-")
        self.https_port, self.turn_port, self.tls_port = free_port(), free_port(), free_port()
        self.log_path = os.path.join(self.tmp, "server.log")
        self.process = subprocess.Popen(
            [binary(), "serve", "--data-dir", self.tmp, "--host", HOST, "--port", str(self.https_port),
             "--turn-port", str(self.turn_port), "--turns-port", str(self.tls_port), "--turn-allow-loopback-peers"],
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(lambda: self._ready(), 60, message="the server to answer on HTTPS and TURN")

    def _ready(self):
        if self.process.poll() is not None:
            raise AssertionError("server exited:\n" + self.log())
        try:
            return self.http("GET", "/health/live")[0] == 200 and self.binding_ok()
        except OSError:
            return False

    def binding_ok(self):
        client = stun.Client(HOST, self.turn_port, timeout=0.3)
        try:
            return client.transact(stun.encode(stun.BINDING, stun.REQUEST, []), attempts=1).cls == stun.SUCCESS
        except (TimeoutError, OSError):
            return False
        finally:
            client.close()

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def cli(self, *args):
        done = subprocess.run([binary(), *args, "--data-dir", self.tmp], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def token(self, role="worker", subject="w-relay"):
        return self.cli("token", "issue", "--role", role, "--subject", subject, "--ttl", "3600").split()[-1]

    def secret(self):
        """The REST secret the relay keys credentials with. Read from raw bytes too (as older
        versions stored it, keying with its hex form), so each test also runs against them."""
        with open(os.path.join(self.tmp, "keys", "turn.secret"), "rb") as f:
            data = f.read()
        text = data.strip()
        return text.decode() if text and all(0x21 <= b <= 0x7E for b in text) else data.hex()

    def http(self, method, path, token=None, body=None, source=None):
        """(status, headers, body) over HTTPS, from `source` (a 127.x address) when given."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(HOST, self.https_port, timeout=10, context=context,
                                                 source_address=(source, 0) if source else None)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def metric(self, name, labels):
        _, _, body = self.http("GET", "/metrics")
        pattern = re.compile(r"^" + re.escape(name) + r"\{" + re.escape(labels) + r"\} ([0-9.e+]+)$", re.M)
        match = pattern.search(body.decode())
        return float(match[1]) if match else 0.0

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


def turn_credential(ice_servers):
    turn = next(s for s in ice_servers if s.get("username"))
    return turn["username"], turn["credential"]


# MARK: - /api/ice-check


def test_ice_check_refuses_anonymous_callers(server):
    for token in (None, "not-a-token"):
        status, headers, body = server.http("GET", "/api/ice-check", token=token, source="127.0.0.21")
        assert status == 401, body
        assert headers.get("Content-Type", "").startswith("application/problem+json"), headers
        assert json.loads(body)["type"].endswith("/unauthorized"), body


def test_ice_check_is_limited_per_client_address(server):
    token = server.token()
    statuses = []
    for _ in range(20):  # the burst is 6; bounded so a broken limit fails instead of looping
        status, headers, body = server.http("GET", "/api/ice-check", token=token, source="127.0.0.22")
        statuses.append(status)
        if status == 429:
            assert headers.get("Content-Type", "").startswith("application/problem+json"), headers
            assert json.loads(body)["type"].endswith("/too-many-requests"), body
            break
    assert statuses[0] == 200 and statuses[-1] == 429, statuses
    # Another address still gets its own.
    assert server.http("GET", "/api/ice-check", token=token, source="127.0.0.23")[0] == 200
    issued = server.metric("samtalerum_ice_check_requests_total", 'outcome="issued"')
    limited = server.metric("samtalerum_ice_check_requests_total", 'outcome="limited"')
    assert issued >= 2 and limited >= 1, (issued, limited)


def test_allocation_lifetime_never_exceeds_the_credential(server):
    status, _, body = server.http("GET", "/api/ice-check", token=server.token(), source="127.0.0.24")
    assert status == 200, body
    username, password = turn_credential(json.loads(body)["iceServers"])
    remaining = int(username.split(":")[0]) - time.time()
    assert remaining <= 121
    client = stun.Client(HOST, server.turn_port)
    try:
        reply = client.allocate(username, password, lifetime=3600)
        assert reply.cls == stun.SUCCESS, reply.error
        assert reply.lifetime <= min(remaining, 60) + 1, reply.lifetime
        # It only gathers a candidate: it may not relay to anyone, public peers included.
        assert client.create_permission(username, password, ("198.51.100.9", 9)).error == 403
        # Deleted again: the check quota test counts every check allocation.
        client.authenticated(stun.REFRESH, [(stun.LIFETIME, bytes(4))], username, password)
    finally:
        client.close()
    # Any credential: an allocation and its refreshes end when the credential does.
    username, password = stun.rest_credentials(server.secret(), "p-short", ttl=100)
    client = stun.Client(HOST, server.turn_port, transport="tcp")
    try:
        reply = client.allocate(username, password, lifetime=3600)
        assert reply.cls == stun.SUCCESS, reply.error
        assert reply.lifetime <= 100, reply.lifetime
        refreshed = client.authenticated(stun.REFRESH, [(stun.LIFETIME, struct.pack("!I", 3600))], username, password)
        assert refreshed.cls == stun.SUCCESS and refreshed.lifetime <= 100, (refreshed.error, refreshed.lifetime)
    finally:
        client.close()


def test_check_credentials_have_their_own_small_quota(server):
    secret = server.secret()
    clients, refused = [], None
    try:
        for i in range(40):  # the check quota is 32
            username, password = stun.rest_credentials(secret, f"check-quota{i}", ttl=120)
            client = stun.Client(HOST, server.turn_port)
            clients.append((client, username, password))
            reply = client.allocate(username, password)
            if reply.cls != stun.SUCCESS:
                refused = (i, reply.error)
                break
        assert refused == (32, 486), refused
        username, password = stun.rest_credentials(secret, "participant-1", ttl=3600)
        participant = stun.Client(HOST, server.turn_port)
        clients.append((participant, username, password))
        reply = participant.allocate(username, password)
        assert reply.cls == stun.SUCCESS, reply.error
    finally:
        for client, username, password in clients:
            if client.key is not None:
                try:
                    client.authenticated(stun.REFRESH, [(stun.LIFETIME, bytes(4))], username, password)
                except (TimeoutError, OSError):
                    pass
            client.close()


# MARK: - STUN replies


def test_errors_answering_a_signed_request_are_signed_the_same_way(server):
    username, password = stun.rest_credentials(server.secret(), "signed-errors", ttl=600)
    for sha256 in (False, True):
        client = stun.Client(HOST, server.turn_port)
        try:
            # No allocation on this 5-tuple: 437, signed as the Refresh was.
            reply = client.authenticated(stun.REFRESH, [(stun.LIFETIME, bytes(4))], username, password, sha256=sha256)
            assert reply.error == 437, reply.error
            assert reply.integrity_valid(client.key) == ("sha256" if sha256 else "sha1")
            # An allocation exists: a new Allocate on the same 5-tuple is a 437 too.
            assert client.allocate(username, password, sha256=sha256).cls == stun.SUCCESS
            again = client.allocate(username, password, sha256=sha256)
            assert again.error == 437 and again.integrity_valid(client.key) == ("sha256" if sha256 else "sha1")
            # 420 for an unknown comprehension-required attribute, signed once authenticated.
            unknown = client.authenticated(stun.REFRESH, [(0x7F31, b"abcd")], username, password, sha256=sha256)
            assert unknown.error == 420 and unknown.integrity_valid(client.key) == ("sha256" if sha256 else "sha1")
            client.authenticated(stun.REFRESH, [(stun.LIFETIME, bytes(4))], username, password, sha256=sha256)
        finally:
            client.close()


def test_binding_with_unknown_comprehension_required_attribute_gets_420(server):
    client = stun.Client(HOST, server.turn_port, source="127.0.0.31")
    try:
        reply = client.transact(stun.encode(stun.BINDING, stun.REQUEST, [(0x7F31, b"abcd")]))
        assert reply.error == 420, (reply.cls, reply.error)
        assert reply.get(stun.UNKNOWN_ATTRIBUTES)[:2] == struct.pack("!H", 0x7F31)
        # Comprehension-optional ones (0x8000 and up) are ignored, as RFC 8489 says.
        plain = client.transact(stun.encode(stun.BINDING, stun.REQUEST, [(0x8F31, b"abcd")]))
        assert plain.cls == stun.SUCCESS
    finally:
        client.close()


def replies_to_a_burst(source, port, requests):
    """Sends every request at once from `source`, then counts replies: (replies, seconds taken)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    started = time.monotonic()
    for request in requests:
        sock.sendto(request, (HOST, port))
    replies = 0
    sock.settimeout(1.0)
    while True:
        try:
            sock.recvfrom(2048)
            replies += 1
        except socket.timeout:
            break
    sock.close()
    return replies, time.monotonic() - started


@pytest.mark.parametrize("kind", ["400-unknown-method", "401-refresh-unsigned", "438-stale-nonce", "400-no-nonce"])
def test_unauthenticated_error_replies_are_rate_limited(server, kind):
    source = {"400-unknown-method": "127.0.0.41", "401-refresh-unsigned": "127.0.0.42",
              "438-stale-nonce": "127.0.0.43", "400-no-nonce": "127.0.0.44"}[kind]
    username, password = stun.rest_credentials(server.secret(), "flood", ttl=600)
    key = stun.long_term_key(username, "samtalerum", password)
    make = {
        "400-unknown-method": lambda: stun.encode(0x0FF, stun.REQUEST, []),
        "401-refresh-unsigned": lambda: stun.encode(stun.REFRESH, stun.REQUEST, []),
        "438-stale-nonce": lambda: stun.encode(stun.REFRESH, stun.REQUEST, [
            (stun.USERNAME, username.encode()), (stun.REALM, b"samtalerum"), (stun.NONCE, b"0.forged")], key=key),
        "400-no-nonce": lambda: stun.encode(stun.REFRESH, stun.REQUEST, [(stun.USERNAME, username.encode())], key=key),
    }[kind]
    replies, seconds = replies_to_a_burst(source, server.turn_port, [make() for _ in range(150)])
    # Burst 20, then 10 per second.
    allowed = 20 + 10 * seconds + 2
    print(f"{kind}: {replies} replies to 150 requests in {seconds:.2f}s (limit {allowed:.0f})")
    assert 1 <= replies <= allowed, (replies, seconds)


def test_send_indications_count_in_the_to_peer_metrics(server):
    if not UCLIENT or not PEER:
        pytest.skip("coturn tools missing: apt-get install -y coturn")
    peer_port = free_port()
    peer = subprocess.Popen([PEER, "-L", HOST, "-p", str(peer_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        before = server.metric("turn_relayed_packets_total", 'direction="to_peer"')
        before_bytes = server.metric("turn_relayed_bytes_total", 'direction="to_peer"')
        username, password = stun.rest_credentials(server.secret(), "send-indications", ttl=600)
        done = subprocess.run([UCLIENT, "-s", "-c", "-u", username, "-w", password, "-p", str(server.turn_port),
                               "-e", HOST, "-r", str(peer_port), "-n", "20", "-m", "1", "-l", "170", "-z", "5", HOST],
                              capture_output=True, text=True, timeout=90)
        assert "Total lost packets 0 (0.000000%)" in done.stdout + done.stderr, done.stdout[-2000:]
        after = wait_until(lambda: (v := server.metric("turn_relayed_packets_total", 'direction="to_peer"')) >= before + 20 and v,
                           10, message="to_peer packets to count the Send indications")
        after_bytes = server.metric("turn_relayed_bytes_total", 'direction="to_peer"')
        print(f"to_peer packets {before:.0f} -> {after:.0f}, bytes {before_bytes:.0f} -> {after_bytes:.0f}")
        assert after_bytes >= before_bytes + 20 * 170
    finally:
        peer.kill()
        peer.wait(timeout=10)


# MARK: - A participant who left


def test_a_left_participants_credentials_allocate_no_more(server):
    websockets = pytest.importorskip("websockets.sync.client")
    token = server.token(subject="w-leaver")
    status, _, body = server.http("POST", "/api/meetings", token=token, body={"citizenRef": "SAG-2026-0101"})
    assert status == 201, body
    meeting = json.loads(body)["meetingId"]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with websockets.connect(f"wss://{HOST}:{server.https_port}/ws", ssl=context, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "hello", "v": 1, "token": token}))
        assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
        ws.send(json.dumps({"type": "join", "meetingId": meeting}))
        joined = None
        for _ in range(10):
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == "joined":
                joined = message
                break
        assert joined, "no joined"
        username, password = turn_credential(joined["iceServers"])
        during = stun.Client(HOST, server.turn_port)
        assert during.allocate(username, password).cls == stun.SUCCESS
        ws.send(json.dumps({"type": "leave"}))
        try:
            while True:
                ws.recv(timeout=10)
        except Exception:  # the server closes with 1000 after leave
            pass

    def refused():
        client = stun.Client(HOST, server.turn_port)
        try:
            return client.allocate(username, password).error == 401
        finally:
            client.close()

    wait_until(refused, 15, interval=0.5, message="Allocate with the left participant's credentials to get 401")
    # Its allocation is gone too: a Refresh finds none (or the credential is refused outright).
    gone = during.authenticated(stun.REFRESH, [(stun.LIFETIME, struct.pack("!I", 600))], username, password)
    assert gone.error in (401, 437), gone.error
    during.close()


# MARK: - The REST secret file and coturn


def coturn_accepts(secret, username, password):
    """turnutils_uclient against coturn configured with `secret`: (every packet came back, output)."""
    tmp = tempfile.mkdtemp(prefix="coturn-secret-")
    port, peer_port = free_port(), free_port()
    server = subprocess.Popen(
        [TURNSERVER, "-n", "--listening-ip=" + HOST, "--relay-ip=" + HOST, "--listening-port=%d" % port,
         "--use-auth-secret", "--static-auth-secret=" + secret, "--realm=samtalerum", "--no-tls", "--no-dtls",
         "--min-port=46000", "--max-port=46999", "--allow-loopback-peers", "--no-cli", "--log-file=stdout",
         "--simple-log", "--db=" + os.path.join(tmp, "turndb")],
        stdout=open(os.path.join(tmp, "coturn.log"), "wb"), stderr=subprocess.STDOUT)
    peer = subprocess.Popen([PEER, "-L", HOST, "-p", str(peer_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = stun.Client(HOST, port, timeout=0.3)
        wait_until(lambda: _answers(probe), 30, message="coturn to answer")
        probe.close()
        done = subprocess.run([UCLIENT, "-c", "-u", username, "-w", password, "-p", str(port), "-e", HOST,
                               "-r", str(peer_port), "-n", "20", "-m", "1", "-l", "170", HOST],
                              capture_output=True, text=True, timeout=90)
        output = done.stdout + done.stderr
        return "Total lost packets 0 (0.000000%)" in output, output[-1500:]
    finally:
        for process in (server, peer):
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def _answers(client):
    try:
        return client.transact(stun.encode(stun.BINDING, stun.REQUEST, []), attempts=1) is not None
    except (TimeoutError, OSError):
        return False


def issue_cli_credentials(data_dir, subject):
    done = subprocess.run([binary(), "turn", "credentials", "--data-dir", data_dir, "--subject", subject],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(not TURNSERVER or not UCLIENT or not PEER, reason="coturn missing: apt-get install -y coturn")
def test_coturn_accepts_our_credentials_with_the_secret_file_as_it_is():
    data_dir = tempfile.mkdtemp(prefix="turn-secret-")
    try:
        creds = issue_cli_credentials(data_dir, "coturn-node")
        with open(os.path.join(data_dir, "keys", "turn.secret")) as f:
            contents = f.read()
        assert re.fullmatch(r"[0-9a-f]{64}", contents), repr(contents)
        ok, output = coturn_accepts(contents, creds["username"], creds["password"])
        assert ok, output
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.skipif(not TURNSERVER or not UCLIENT or not PEER, reason="coturn missing: apt-get install -y coturn")
def test_a_raw_bytes_secret_file_becomes_its_hex_form_and_credentials_stay_valid():
    data_dir = tempfile.mkdtemp(prefix="turn-secret-")
    try:
        os.makedirs(os.path.join(data_dir, "keys"), mode=0o700)
        raw = os.urandom(32)
        path = os.path.join(data_dir, "keys", "turn.secret")
        with open(path, "wb") as f:
            f.write(raw)
        os.chmod(path, 0o600)
        creds = issue_cli_credentials(data_dir, "migrated")
        with open(path) as f:
            assert f.read() == raw.hex()
        assert os.stat(path).st_mode & 0o777 == 0o600
        # The hex form was already what the relay keyed its credentials with: nothing issued changes.
        assert creds["password"] == base64.b64encode(
            hmac.new(raw.hex().encode(), creds["username"].encode(), hashlib.sha1).digest()).decode()
        ok, output = coturn_accepts(raw.hex(), creds["username"], creds["password"])
        assert ok, output
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
