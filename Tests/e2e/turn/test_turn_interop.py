"""TURN relay interop: coturn's test client, aioice, and the deny matrix, against real sockets.

Run against the built server (one command):

    SAMTALERUM_BIN=.build/debug/samtalerum python3 -m pytest -q Tests/e2e/turn

Needs `turnutils_uclient`/`turnutils_peer` (apt-get install -y coturn) and `aioice`
(pip install aioice). With TURN_REFERENCE=coturn the same tests run against coturn's
`turnserver` instead, which is how the client invocations were checked.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

HOST = "127.0.0.1"
SECRET = "interop-secret"  # only for the coturn reference server
UCLIENT = shutil.which("turnutils_uclient")
PEER = shutil.which("turnutils_peer")

pytestmark = pytest.mark.skipif(not UCLIENT or not PEER, reason="coturn tools missing: apt-get install -y coturn")


REFERENCE_DENIED_RANGES = [
    "0.0.0.0-0.255.255.255", "10.0.0.0-10.255.255.255", "172.16.0.0-172.31.255.255", "192.168.0.0-192.168.255.255",
    "100.64.0.0-100.127.255.255", "169.254.0.0-169.254.255.255", "192.0.0.0-192.0.0.255", "198.18.0.0-198.19.255.255",
    "224.0.0.0-255.255.255.255",
]


def free_port(kind=socket.SOCK_DGRAM):
    """A port free for both UDP and TCP (the relay listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                t.bind((HOST, port))
                u.bind((HOST, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def stun_binding_ok(port, timeout=0.2):
    """True once a STUN Binding request on UDP gets any STUN reply."""
    request = bytes.fromhex("000100002112a442") + os.urandom(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(request, (HOST, port))
            data, _ = s.recvfrom(2048)
            return len(data) >= 20 and data[8:20] == request[8:20]
        except OSError:
            return False


def wait_for_echo(port):
    """turnutils_peer echoes every datagram: wait until it does, so no test races its start."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.1)
        for _ in range(50):
            s.sendto(b"ping", (HOST, port))
            try:
                s.recvfrom(64)
                return
            except OSError:
                continue
    raise RuntimeError("turnutils_peer did not start on %d" % port)


def kill(process):
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)  # turnutils_peer ignores SIGTERM
        process.wait(timeout=10)


class Relay:
    """A running relay: ours (samtalerum serve) or the coturn reference."""

    def __init__(self, allow_loopback):
        self.port = free_port()
        self.tls_port = free_port(socket.SOCK_STREAM)
        self.tmp = tempfile.mkdtemp(prefix="turn-interop-")
        self.allow_loopback = allow_loopback
        self.reference = os.environ.get("TURN_REFERENCE") == "coturn"
        self.process = self._start_reference() if self.reference else self._start_samtalerum()
        deadline = time.monotonic() + 60
        while not stun_binding_ok(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("relay did not start:\n" + self.log())
            time.sleep(0.2)

    def _start_samtalerum(self):
        binary = os.environ.get("SAMTALERUM_BIN")
        if not binary:
            pytest.skip("SAMTALERUM_BIN not set (path to the built samtalerum binary)")
        args = [binary, "serve", "--data-dir", self.tmp, "--host", HOST, "--port", str(free_port(socket.SOCK_STREAM)),
                "--turn-port", str(self.port), "--turns-port", str(self.tls_port)]
        if self.allow_loopback:
            args.append("--turn-allow-loopback-peers")
        return subprocess.Popen(args, stdout=open(os.path.join(self.tmp, "server.log"), "wb"), stderr=subprocess.STDOUT)

    def _start_reference(self):
        cert, key = os.path.join(self.tmp, "cert.pem"), os.path.join(self.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        args = ["turnserver", "-n", "--listening-ip=" + HOST, "--relay-ip=" + HOST,
                "--listening-port=%d" % self.port, "--tls-listening-port=%d" % self.tls_port,
                "--use-auth-secret", "--static-auth-secret=" + SECRET, "--realm=samtalerum",
                "--cert=" + cert, "--pkey=" + key, "--no-dtls", "--min-port=45000", "--max-port=45999",
                "--no-cli", "--log-file=stdout", "--simple-log", "--db=" + os.path.join(self.tmp, "turndb")]
        # coturn relays to private ranges unless told not to; give it our deny list to compare like with like.
        args += ["--denied-peer-ip=" + r for r in REFERENCE_DENIED_RANGES]
        if self.allow_loopback:
            args.append("--allow-loopback-peers")
        else:
            args.append("--denied-peer-ip=127.0.0.0-127.255.255.255")
        return subprocess.Popen(args, stdout=open(os.path.join(self.tmp, "server.log"), "wb"), stderr=subprocess.STDOUT)

    def credentials(self, subject):
        """{username, password, ...}: from `samtalerum turn credentials`, or computed like coturn does."""
        if self.reference:
            username = "%d:%s" % (int(time.time()) + 600, subject)
            password = base64.b64encode(hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()).decode()
            return {"username": username, "password": password, "ttl": 600, "uris": []}
        out = subprocess.run([os.environ["SAMTALERUM_BIN"], "turn", "credentials", "--data-dir", self.tmp,
                              "--subject", subject], check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    def log(self):
        try:
            with open(os.path.join(self.tmp, "server.log"), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # graceful shutdown
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                kill(self.process)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def relay():
    r = Relay(allow_loopback=True)
    yield r
    r.stop()


@pytest.fixture(scope="module")
def strict_relay():
    """Default configuration: loopback peers denied too."""
    r = Relay(allow_loopback=False)
    yield r
    r.stop()


@pytest.fixture
def peer():
    port = free_port()
    process = subprocess.Popen([PEER, "-L", HOST, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_echo(port)
    yield port
    kill(process)


def uclient(relay, flags, peer_ip, peer_port, subject, messages=100, clients=2, timeout=90):
    """turnutils_uclient with the relay's REST credentials; returns (exit code, output)."""
    creds = relay.credentials(subject)
    port = relay.tls_port if "-S" in flags else relay.port
    args = [UCLIENT, *flags, "-c", "-u", creds["username"], "-w", creds["password"], "-p", str(port),
            "-e", peer_ip, "-r", str(peer_port), "-n", str(messages), "-m", str(clients), "-l", "170", "-z", "5", HOST]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("flags", [[], ["-t"], ["-t", "-S"], ["-s"], ["-t", "-s"]],
                         ids=["udp-channel", "tcp-channel", "tls-channel", "udp-send-indication", "tcp-send-indication"])
def test_uclient_every_message_comes_back(relay, peer, flags):
    code, output = uclient(relay, flags, HOST, peer, "uclient")
    assert "Total lost packets 0 (0.000000%)" in output, output[-3000:] + "\n--- server ---\n" + relay.log()
    assert code == 0


# Every default-denied range, as seen by a real client (IPv4 relay, so IPv4 peers).
DENIED_PEERS = ["0.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254",
                "192.0.0.8", "198.18.0.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255"]


@pytest.mark.parametrize("peer_ip", DENIED_PEERS)
def test_denied_peer_gets_403(relay, peer_ip):
    # A fresh credential id each: uclient leaves its allocation behind, which counts against the quota.
    subject = "deny-" + peer_ip.replace(".", "-")
    code, output = uclient(relay, [], peer_ip, 3480, subject, messages=1, clients=1, timeout=30)
    assert "error 403" in output, output[-2000:]
    assert "Total lost packets 0" not in output


def test_loopback_peer_denied_by_default(strict_relay, peer):
    code, output = uclient(strict_relay, [], HOST, peer, "deny-loopback", messages=1, clients=1, timeout=30)
    assert "error 403" in output, output[-2000:]


def test_aioice_allocate_permission_send_receive(relay):
    aioice_turn = pytest.importorskip("aioice.turn")
    creds = relay.credentials("aioice")

    async def scenario():
        loop = asyncio.get_running_loop()
        received = loop.create_future()

        class PeerEcho(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                self.transport.sendto(b"echo:" + data, addr)

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                if not received.done():
                    received.set_result((data, addr))

        peer_transport, _ = await loop.create_datagram_endpoint(PeerEcho, local_addr=(HOST, 0))
        peer_addr = peer_transport.get_extra_info("sockname")
        for transport_name in ["udp", "tcp"]:
            received = loop.create_future()
            turn, _ = await aioice_turn.create_turn_endpoint(
                Client, server_addr=(HOST, relay.port), username=creds["username"], password=creds["password"],
                transport=transport_name)
            try:
                relayed = turn.get_extra_info("sockname")
                assert relayed[0] == HOST
                turn.sendto(b"ping-" + transport_name.encode(), peer_addr)
                data, addr = await asyncio.wait_for(received, 10)
                assert data == b"echo:ping-" + transport_name.encode()
                assert tuple(addr) == tuple(peer_addr)
            finally:
                turn.close()
                await asyncio.sleep(0.2)
        peer_transport.close()

    asyncio.run(scenario())
