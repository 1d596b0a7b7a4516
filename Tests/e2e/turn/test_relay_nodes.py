"""Issue 14, item 4: relays scale out. `samtalerum serve --no-turn` hands out the relays of
`turn.relays`; the relays are separate processes sharing its keys/turn.secret: `samtalerum
relay` nodes and a coturn (`turnserver --use-auth-secret --static-auth-secret=…`).

- The policy (loopback, two `samtalerum relay`): a client whose address is in a relay's
  `networks` gets that relay though it is the busier one; a client from elsewhere gets the one
  reporting fewer allocations at its status URL; a stopped relay is skipped; with none reachable,
  the first of the list. The ops view names each participant's relay. SIGHUP reloads a relay's
  certificate, SIGTERM ends it with 0.
- Relayed↔relayed across two relay nodes (root: network namespaces on one 203.0.113.0/28
  segment): our relay and coturn on different addresses, credentials from `joined` (a client
  reaching the server at 127.0.0.1 is given ours, one reaching it at this host's address on the
  segment coturn, by `networks`): two relay-only aioice agents, one allocating on each relay,
  connect and exchange data (udp↔udp, tcp↔tcp, udp↔tcp); and two Chromium pages the same way,
  relay-only over UDP and over TCP, decode each other's video.

    SAMTALERUM_BIN=.build/debug/samtalerum python3 -m pytest -q Tests/e2e/turn/test_relay_nodes.py
"""

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from websockets.asyncio.client import connect

import stun_client as stun
from conftest import (Server, create_meeting, enter, free_port, http_get, insecure_context, invite_guest, issue_token,
                      server_binary, wait_until, ws_url)
from relay_support import Browser, Coturn, RelayLAN, RelayNodeProcess


def shared_secret(data_dir):
    """The REST secret every relay and the signalling node share, made before any of them
    starts, so the relays can be started first and listed with their real ports."""
    keys = data_dir / "keys"
    keys.mkdir(parents=True, mode=0o700)
    (keys / "turn.secret").write_text(secrets.token_hex(32))
    (keys / "turn.secret").chmod(0o600)


def start_serve(work, data_dir, relays, policy="nearest", all_addresses=False):
    """`serve --no-turn` listing `relays`; on 127.0.0.1, or on every address of this host (so a
    client reaching it at another of them has that address as its own)."""
    env = {"SAMTALERUM_TURN_RELAYS": json.dumps(relays), "SAMTALERUM_TURN_RELAY_POLICY": policy,
           "SAMTALERUM_TURN_RELAY_STATUS_INTERVAL_SECONDS": "1", "SAMTALERUM_TURN_RELAY_STATUS_TIMEOUT_SECONDS": "1",
           "SAMTALERUM_SIGNALLING_AUTO_ADMIT": "true"}
    port = free_port()
    wide = ["--host", "0.0.0.0", "--public-url", f"https://127.0.0.1:{port}"] if all_addresses else []
    serve = Server(data_dir, port, work / "serve.log", ["--no-turn", *wide], env)
    serve.start()
    return serve


def metric(serve, name, relay):
    status, body = http_get(serve.url("/metrics"))
    assert status == 200
    found = re.search(rf'^{name}\{{relay="{relay}"\}} (\S+)$', body.decode(), re.MULTILINE)
    return float(found[1]) if found else None


def given_relay(joined):
    """(host, udp port) of the TURN URIs in `joined`, and its credentials."""
    turn = next(server for server in joined["iceServers"] if server.get("username"))
    udp = next(url for url in turn["urls"] if url.startswith("turn:") and url.endswith("?transport=udp"))
    host, port = urlparse(udp.replace("turn:", "turn://", 1)).hostname, urlparse(udp.replace("turn:", "turn://", 1)).port
    return (host, port), turn["username"], turn["credential"]


async def join_from(serve, source, token, meeting_id=None, url=None):
    """A signalling connection from `source` (an address of this host) to `url` (the server's
    /ws): the connection and `joined`."""
    ws = await connect(url or ws_url(serve), ssl=insecure_context(), local_addr=(source, 0), open_timeout=15)
    return ws, await enter(ws, token, meeting_id)


def invite_token(url):
    return url.split("#invite=", 1)[1]


def ops_relays(serve, ops_token):
    status, body = http_get_with_token(serve, "/api/ops/sessions", ops_token)
    assert status == 200, body
    return {(p["role"], p.get("relay")) for s in json.loads(body)["sessions"] for p in s["participants"]}


def http_get_with_token(serve, path, token):
    request = urllib.request.Request(serve.url(path), headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, context=insecure_context(), timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_the_policy_picks_by_network_then_by_load_and_skips_relays_that_do_not_answer(tmp_path):
    started = time.monotonic()
    binary = server_binary()
    data = tmp_path / "serve-data"
    shared_secret(data)
    a = RelayNodeProcess(tmp_path, binary, "a", data, env={"SAMTALERUM_SERVER_NODE_NAME": "relay-a"}).start()
    b = RelayNodeProcess(tmp_path, binary, "b", data).start()
    serve = None
    try:
        entries = [{"name": name, "host": "127.0.0.1", "port": relay.ports["udp"], "tlsPort": relay.ports["tls"],
                    "networks": networks, "statusURL": relay.status_url}
                   for name, relay, networks in (("a", a, ["127.0.0.2/32"]), ("b", b, []))]
        serve = start_serve(tmp_path, data, entries)
        by_port = {a.ports["udp"]: "a", b.ports["udp"]: "b"}

        # Relay a holds three allocations (credentials of the same secret, from the CLI).
        holder = json.loads(serve.cli("turn", "credentials", "--subject", "load-holder"))
        holders = [stun.Client("127.0.0.1", a.ports["udp"]) for _ in range(3)]
        for client in holders:
            assert client.allocate(holder["username"], holder["password"]).cls == stun.SUCCESS
        assert a.status()["allocations"] == 3 and b.status()["allocations"] == 0
        assert a.status()["node"] == "relay-a"
        # The same exporter as serve's: the relay's own families, counted by the relay itself.
        base = a.status_url.rsplit("/health/ready", 1)[0]
        with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
            exposition = response.read().decode()
        assert re.search(r"^turn_allocations 3(\.0)?$", exposition, re.MULTILINE), exposition[:2000]
        assert "# HELP turn_allocations " in exposition
        with urllib.request.urlopen(base + "/health/live", timeout=5) as response:
            assert json.load(response) == {"status": "ok"}
        wait_until(lambda: metric(serve, "samtalerum_relay_reported_allocations", "a") == 3, 20,
                   message="serve to read relay a's load")
        wait_until(lambda: metric(serve, "samtalerum_relay_reported_allocations", "b") == 0, 20,
                   message="serve to read relay b's load")

        worker_token = issue_token(serve)
        ops_token = issue_token(serve, role="ops", subject="ops-relays")
        meeting = create_meeting(serve, worker_token)
        # The pre-call network check is given a relay the same way.
        status, body = http_get_with_token(serve, "/api/ice-check", worker_token)
        assert status == 200, body
        check_relay = given_relay(json.loads(body))[0]
        assert by_port[check_relay[1]] == "b", body

        async def scenario():
            connections = []
            try:
                ws, joined = await join_from(serve, "127.0.0.1", worker_token, meeting["meetingId"])
                connections.append(ws)
                worker_relay, username, password = given_relay(joined)
                # Not in a's networks: the least loaded, b.
                assert by_port[worker_relay[1]] == "b", joined["iceServers"]
                # The credentials are coturn's REST format and work on the relay given.
                client = stun.Client(*worker_relay)
                try:
                    assert client.allocate(username, password).cls == stun.SUCCESS
                finally:
                    client.close()

                ws, joined = await join_from(serve, "127.0.0.2", invite_token(meeting["citizenInviteUrl"]))
                connections.append(ws)
                # In a's networks: a, though it holds more allocations.
                assert by_port[given_relay(joined)[0][1]] == "a", joined["iceServers"]
                assert ops_relays(serve, ops_token) == {("worker", "b"), ("citizen", "a")}

                # b stops (SIGTERM: exit 0); once its status no longer answers it is skipped.
                assert b.stop() == 0, b.log()[-2000:]
                wait_until(lambda: metric(serve, "samtalerum_relay_up", "b") == 0, 20, message="serve to see b down")
                guest = invite_guest(serve, worker_token, meeting["meetingId"], "JC-relay-1")
                ws, joined = await join_from(serve, "127.0.0.1", invite_token(guest["guestInviteUrl"]))
                connections.append(ws)
                assert by_port[given_relay(joined)[0][1]] == "a", joined["iceServers"]

                # SIGHUP reloads a's certificate and it keeps serving.
                a.signal(signal.SIGHUP)
                wait_until(lambda: "TLS certificate reloaded on SIGHUP" in a.log(), 15, message="a's reload line")
                assert a.status()["status"] == "ready"

                # Nothing reachable: the first of the list.
                assert a.stop() == 0, a.log()[-2000:]
                wait_until(lambda: metric(serve, "samtalerum_relay_up", "a") == 0, 20, message="serve to see a down")
                guest = invite_guest(serve, worker_token, meeting["meetingId"], "JC-relay-2")
                ws, joined = await join_from(serve, "127.0.0.1", invite_token(guest["guestInviteUrl"]))
                connections.append(ws)
                assert by_port[given_relay(joined)[0][1]] == "a", joined["iceServers"]
                assert metric(serve, "samtalerum_relay_assignments_total", "a") == 3
                assert metric(serve, "samtalerum_relay_assignments_total", "b") == 2  # the check and the worker
            finally:
                for ws in connections:
                    await ws.close()

        asyncio.run(scenario())
        for client in holders:
            client.close()
        print(f"policy test: {time.monotonic() - started:.1f} s")
    except AssertionError as err:
        raise AssertionError(f"{err}\n--- serve ---\n{serve.log_tail() if serve else ''}\n--- a ---\n{a.log()[-1500:]}"
                             f"\n--- b ---\n{b.log()[-1500:]}") from None
    finally:
        if serve:
            serve.stop()
        a.stop()
        b.stop()


def test_a_relay_without_the_shared_secret_refuses_to_start(tmp_path):
    """A secret of its own would refuse every credential signalling issues: no start, and
    nothing written where the data directory should be."""
    data = tmp_path / "relay-data"
    done = subprocess.run([str(server_binary()), "relay", "--data-dir", str(data), "--turn-port", "0", "--turns-port", "0",
                           "--status-port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, done.stdout
    assert "keys/turn.secret does not exist" in done.stderr + done.stdout, done.stderr
    assert not data.exists()


@pytest.fixture(scope="module")
def two_relay_nodes():
    """Our relay and coturn on one segment, a signalling node listing both, and the credentials
    its `joined` gave a worker connecting from 127.0.0.1 (ours, by its networks) and a citizen
    connecting to this host's address on the segment (coturn, by its networks)."""
    if os.geteuid() != 0:
        pytest.fail("needs root for ip netns (the e2e environment runs as root)")
    if not shutil.which("turnserver"):
        pytest.skip("coturn (turnserver) not installed: Scripts/install-test-deps")
    work = Path(tempfile.mkdtemp(prefix="relay-nodes-"))
    data = work / "serve-data"
    shared_secret(data)
    binary = server_binary()
    serve = ours = coturn = None
    with RelayLAN(relays=2) as lan:
        try:
            ours = RelayNodeProcess(work, binary, "ours", data, host=lan.ips[0], wrap=lambda *c: lan.command(0, *c),
                                    turn_port=3478, tls_port=5349, status_port=9478).start()
            coturn = Coturn(work, data, lan.ips[1], wrap=lambda *c: lan.command(1, *c)).start()
            # coturn says it started before its listener answers: wait for a Binding answer.
            def coturn_answers():
                probe = stun.Client(lan.ips[1], 3478, timeout=0.5)
                try:
                    return probe.transact(stun.encode(stun.BINDING, stun.REQUEST, []), attempts=1).cls == stun.SUCCESS
                except (TimeoutError, OSError):
                    return False
                finally:
                    probe.close()
            wait_until(coturn_answers, 30, message="coturn to answer a Binding")
            serve = start_serve(work, data, [
                {"name": "ours", "host": lan.ips[0], "port": 3478, "tlsPort": 5349, "networks": ["127.0.0.1/32"],
                 "statusURL": ours.status_url},
                {"name": "coturn", "host": lan.ips[1], "port": 3478, "tlsPort": 0, "networks": [f"{lan.host_ip}/32"]},
            ], all_addresses=True)
            segment_url = f"https://{lan.host_ip}:{serve.port}"
            wait_until(lambda: metric(serve, "samtalerum_relay_reported_allocations", "ours") == 0, 20,
                       message="serve to read our relay's status")
            worker_token = issue_token(serve)
            meeting = create_meeting(serve, worker_token)

            async def both():
                worker_ws, worker = await join_from(serve, "127.0.0.1", worker_token, meeting["meetingId"])
                citizen_ws, citizen = await join_from(serve, lan.host_ip, invite_token(meeting["citizenInviteUrl"]),
                                                      url=segment_url.replace("https://", "wss://") + "/ws")
                await worker_ws.close()
                await citizen_ws.close()
                return given_relay(worker), given_relay(citizen)

            worker, citizen = asyncio.run(both())
            assert worker[0] == (lan.ips[0], 3478), worker
            assert citizen[0] == (lan.ips[1], 3478), citizen

            def logs():
                return (f"--- serve ---\n{serve.log_tail()}\n--- ours ---\n{ours.log()[-2000:]}\n"
                        f"--- coturn ---\n{coturn.log()[-2000:]}")
            yield {"ours": worker, "coturn": citizen, "lan": lan, "logs": logs, "serve": serve, "work": work,
                   "segment_url": segment_url}
        finally:
            if serve:
                serve.stop()
            if coturn:
                coturn.stop()
            if ours:
                ours.stop()
            shutil.rmtree(work, ignore_errors=True)


async def relayed_across(first, second, transport_a, transport_b):
    """Two relay-only agents, `first` allocating on one relay and `second` on the other, connect
    and exchange data both ways; returns their candidates."""
    aioice = pytest.importorskip("aioice")
    agents = []
    for controlling, ((host, port), username, password), transport in ((True, first, transport_a), (False, second, transport_b)):
        agents.append(aioice.Connection(
            ice_controlling=controlling, components=1, turn_server=(host, port), turn_username=username,
            turn_password=password, turn_transport=transport, use_ipv6=False, transport_policy=aioice.TransportPolicy.RELAY))
    a, b = agents
    try:
        await asyncio.wait_for(asyncio.gather(a.gather_candidates(), b.gather_candidates()), 30)
        for agent, ((host, _), _, _) in ((a, first), (b, second)):
            assert agent.local_candidates and all(c.type == "relay" and c.host == host for c in agent.local_candidates), \
                agent.local_candidates
        for agent, other in ((a, b), (b, a)):
            for candidate in other.local_candidates:
                await agent.add_remote_candidate(candidate)
            await agent.add_remote_candidate(None)
            agent.remote_username, agent.remote_password = other.local_username, other.local_password
        await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 60)
        for count in range(20):
            await a.send(b"to coturn's side %d" % count)
            assert await asyncio.wait_for(b.recv(), 10) == b"to coturn's side %d" % count
            await b.send(b"to our side %d" % count)
            assert await asyncio.wait_for(a.recv(), 10) == b"to our side %d" % count
        return [c.to_sdp() for c in a.local_candidates], [c.to_sdp() for c in b.local_candidates]
    finally:
        for agent in agents:
            await agent.close()


@pytest.mark.parametrize("transports", [("udp", "udp"), ("tcp", "tcp"), ("udp", "tcp")],
                         ids=["udp-udp", "tcp-tcp", "udp-tcp"])
def test_relayed_to_relayed_across_our_relay_and_coturn(two_relay_nodes, transports):
    started = time.monotonic()
    try:
        a, b = asyncio.run(relayed_across(two_relay_nodes["ours"], two_relay_nodes["coturn"], *transports))
    except (AssertionError, asyncio.TimeoutError, ConnectionError) as err:
        raise AssertionError(f"{err!r}\n{two_relay_nodes['logs']()}") from None
    print(f"{transports}: ours {a}, coturn {b}, {time.monotonic() - started:.1f} s")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_browser_call_between_parties_on_our_relay_and_on_coturn(two_relay_nodes, transport):
    """The same across two relay nodes with the real pages: the worker's Chromium reaches the
    server at 127.0.0.1 and is given our relay, the citizen's reaches it at this host's address on
    the segment and is given coturn; both relay-only over `transport`, video decoded on both sides,
    each side's selected pair its own relay's address ↔ the other relay's."""
    nodes = two_relay_nodes
    serve, lan = nodes["serve"], nodes["lan"]
    ours_ip, coturn_ip = lan.ips
    worker_token = issue_token(serve, subject=f"w-browser-{transport}")
    meeting = create_meeting(serve, worker_token, citizen_ref=f"SAG-relay-{transport}")
    browsers = {}
    started = time.monotonic()
    try:
        for name in ("worker", "citizen"):
            browsers[name] = Browser(f"{name}-{transport}", nodes["work"])
            browsers[name].force_relay(transport)
        worker, citizen = browsers["worker"], browsers["citizen"]
        worker.driver.get(meeting["workerJoinUrl"])
        worker.element("token-input").send_keys(worker_token)
        worker.element("sign-in-button").click()
        citizen.driver.get(nodes["segment_url"] + "/join#invite=" + invite_token(meeting["citizenInviteUrl"]))
        citizen.element("join-button").click()

        def decoding():
            stats = {name: browser.stats() for name, browser in browsers.items()}
            return all(s.get("framesDecoded", 0) > 0 and s.get("pair") for s in stats.values()) and stats
        stats = wait_until(decoding, 60, interval=0.5, message="video decoded on both sides through two relays")
        for name, own, other in (("worker", ours_ip, coturn_ip), ("citizen", coturn_ip, ours_ip)):
            pair = stats[name]["pair"]
            assert pair["local"]["candidateType"] == "relay" and pair["local"]["relayProtocol"] == transport, stats[name]
            assert pair["local"]["address"] == own and pair["remote"]["address"] == other, stats[name]
            # Only this transport's URL of the one relay the server gave this party.
            assert stats[name]["relay"]["iceServers"] == [[f"turn:{own}:3478?transport={transport}"]], stats[name]
        assert stats["worker"]["pair"]["remote"]["port"] == stats["citizen"]["pair"]["local"]["port"], stats
        print(f"browser call over {transport} across our relay and coturn: "
              f"{json.dumps({n: s['pair'] for n, s in stats.items()})}, {time.monotonic() - started:.1f} s")
    except AssertionError as err:
        lines = [str(err)]
        for name, browser in browsers.items():
            lines.append(f"{name} console: {browser.console()[-15:]}")
        raise AssertionError("\n".join(lines) + "\n" + nodes["logs"]()) from None
    finally:
        for browser in browsers.values():
            browser.quit()
