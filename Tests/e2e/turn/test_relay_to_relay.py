"""Issue 10, item 1: two parties that can only use the relay reach each other through it when
the relay has a real, non-loopback address. The server runs in a network namespace on a
203.0.113.x address with its default peer policy (no --turn-allow-loopback-peers); two aioice
agents in this host's namespace gather relayed candidates only (udp↔udp, tcp↔tcp, udp↔tcp), so
each one's peer is the other's relayed address: the relay's own address, another port.

    SAMTALERUM_BIN=.build/debug/samtalerum python3 -m pytest -q Tests/e2e/turn/test_relay_to_relay.py
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import stun_client as stun
from relay_support import RelayNamespace

HTTPS_PORT, TURN_PORT, TURNS_PORT = 8443, 3478, 5349


def binary():
    path = os.environ.get("SAMTALERUM_BIN")
    if not path:
        pytest.skip("SAMTALERUM_BIN not set (path to the built samtalerum binary)")
    return path


@pytest.fixture(scope="module")
def relay():
    if os.geteuid() != 0:
        pytest.fail("needs root for ip netns (the e2e environment runs as root)")
    data_dir = tempfile.mkdtemp(prefix="relay-to-relay-")
    log_path = os.path.join(data_dir, "server.log")
    with RelayNamespace() as namespace:
        process = subprocess.Popen(
            namespace.command(binary(), "serve", "--data-dir", data_dir, "--host", namespace.ip,
                              "--port", str(HTTPS_PORT), "--turn-port", str(TURN_PORT), "--turns-port", str(TURNS_PORT)),
            stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def log():
            with open(log_path, "rb") as f:
                return f.read().decode(errors="replace")[-3000:]

        deadline = time.monotonic() + 60
        while True:
            probe = stun.Client(namespace.ip, TURN_PORT, timeout=0.3)
            try:
                if probe.transact(stun.encode(stun.BINDING, stun.REQUEST, []), attempts=1).cls == stun.SUCCESS:
                    break
            except (TimeoutError, OSError):
                pass
            finally:
                probe.close()
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("relay did not start in the namespace:\n" + log())
            time.sleep(0.3)
        try:
            yield namespace, data_dir, log
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            shutil.rmtree(data_dir, ignore_errors=True)


def credentials(data_dir, subject):
    done = subprocess.run([binary(), "turn", "credentials", "--data-dir", data_dir, "--subject", subject],
                          capture_output=True, text=True, timeout=60, check=True)
    creds = json.loads(done.stdout)
    return creds["username"], creds["password"]


async def relayed_pair(server_ip, data_dir, transport_a, transport_b):
    """Two relay-only ICE agents connect and exchange data both ways; returns their candidates."""
    aioice = pytest.importorskip("aioice")
    agents = []
    for controlling, transport, subject in ((True, transport_a, "agent-a"), (False, transport_b, "agent-b")):
        username, password = credentials(data_dir, f"{subject}-{transport_a}-{transport_b}")
        agents.append(aioice.Connection(
            ice_controlling=controlling, components=1, turn_server=(server_ip, TURN_PORT), turn_username=username,
            turn_password=password, turn_transport=transport, use_ipv6=False,
            transport_policy=aioice.TransportPolicy.RELAY))
    a, b = agents
    try:
        await asyncio.wait_for(asyncio.gather(a.gather_candidates(), b.gather_candidates()), 30)
        for agent in agents:
            assert agent.local_candidates and all(c.type == "relay" for c in agent.local_candidates), agent.local_candidates
            assert all(c.host == server_ip for c in agent.local_candidates), agent.local_candidates
        for agent, other in ((a, b), (b, a)):
            for candidate in other.local_candidates:
                await agent.add_remote_candidate(candidate)
            await agent.add_remote_candidate(None)
            agent.remote_username, agent.remote_password = other.local_username, other.local_password
        await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 60)
        await a.send(b"from a")
        assert await asyncio.wait_for(b.recv(), 10) == b"from a"
        await b.send(b"from b")
        assert await asyncio.wait_for(a.recv(), 10) == b"from b"
        return [c.to_sdp() for c in a.local_candidates], [c.to_sdp() for c in b.local_candidates]
    finally:
        for agent in agents:
            await agent.close()


@pytest.mark.parametrize("transports", [("udp", "udp"), ("tcp", "tcp"), ("udp", "tcp")],
                         ids=["udp-udp", "tcp-tcp", "udp-tcp"])
def test_two_relay_only_agents_connect_through_the_relay(relay, transports):
    namespace, data_dir, log = relay
    try:
        a, b = asyncio.run(relayed_pair(namespace.ip, data_dir, *transports))
    except (AssertionError, asyncio.TimeoutError, ConnectionError) as err:
        raise AssertionError(f"{err!r}\n--- server ---\n{log()}") from None
    print(f"{transports}: a {a}, b {b}")


def test_other_own_addresses_stay_denied(relay):
    """Only live allocations are allowed among the relay's own addresses: not its listener
    ports, not a relay port nobody holds, and the deny list applies as before."""
    namespace, data_dir, _ = relay
    username, password = credentials(data_dir, "own-address-probe")
    client = stun.Client(namespace.ip, TURN_PORT)
    try:
        assert client.allocate(username, password).cls == stun.SUCCESS
        for peer in ((namespace.ip, TURN_PORT), (namespace.ip, HTTPS_PORT), ("127.0.0.1", 9), ("10.0.0.1", 9)):
            reply = client.create_permission(username, password, peer)
            assert reply.error == 403, (peer, reply.error)
        other = stun.Client(namespace.ip, TURN_PORT)
        try:
            relayed = other.allocate(*credentials(data_dir, "own-address-other"))
            assert relayed.cls == stun.SUCCESS
            assert client.create_permission(username, password, relayed.relayed()).cls == stun.SUCCESS
        finally:
            other.close()
    finally:
        client.close()
