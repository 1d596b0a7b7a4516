"""Operating the real binary (issue #13 items 3-5): readiness that fails while the audit store
cannot commit (a real full file system: a small tmpfs filled up) and recovers, problem+json and
a log line for every 5xx, HEAD on the health endpoints; JSON log lines with one line per
meeting/session lifecycle event carrying ids but no references or addresses, failed TLS
handshakes kept out of the error level; /metrics that passes `promtool check metrics`, and the
shipped Grafana dashboard and Prometheus alert rules checked against it."""

import contextlib
import errno
import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from conftest import (REPO, Server, admit_until_joined, create_meeting, free_port, http_get, insecure_context,
                      issue_token, running_server, server_binary, wait_until)

DASHBOARD = REPO / "Packaging/grafana/samtalerum-dashboard.json"
ALERT_RULES = REPO / "Packaging/prometheus/samtalerum-alerts.yml"
METRICS_DOC = REPO / "Docs/METRICS.md"
CITIZEN_REF = "SAG-2026-7731"
WORKER_SUBJECT = "w-ops-logs-4410"


def request(server, method, path, token=None, body=None, timeout=10):
    """(status, headers, body bytes) for any method, without raising on 4xx/5xx."""
    connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=insecure_context(), timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def assert_problem(status, headers, body, expected_status):
    assert status == expected_status, (status, body)
    assert headers.get("Content-Type", "").startswith("application/problem+json"), headers
    problem = json.loads(body)
    assert problem["status"] == expected_status and problem["type"].startswith("https://"), problem
    return problem


def promtool():
    path = shutil.which("promtool")
    if not path:
        pytest.fail("promtool missing: Scripts/install-test-deps installs Debian's prometheus package")
    return path


# --- Item 3: readiness tells the truth ----------------------------------------------------------

@contextlib.contextmanager
def small_tmpfs(size="16m"):
    """A file system of its own that can really fill up (root ignores permissions, not quotas)."""
    mountpoint = Path(tempfile.mkdtemp(prefix="samtalerum-ops-tmpfs-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        mountpoint.rmdir()
        pytest.fail(f"cannot mount a tmpfs (the test needs root): {mounted.stderr}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
        shutil.rmtree(mountpoint, ignore_errors=True)


def fill(path):
    """Writes zeros into `path` until the file system is full."""
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as filler:
        for _ in range(100_000):  # 6 GB at most; a 16 MB tmpfs fills after ~250
            try:
                filler.write(chunk)
            except OSError as err:
                assert err.errno == errno.ENOSPC, err
                break
        else:
            raise AssertionError("the file system never filled up")
    # The last partial chunk: a write can succeed short of ENOSPC, so top up byte-wise.
    with open(path, "ab", buffering=0) as filler:
        with contextlib.suppress(OSError):
            for _ in range(65536):
                filler.write(b"\0")


def test_ready_fails_with_problem_json_while_the_store_cannot_commit_and_recovers(tmp_path):
    with small_tmpfs() as volume:
        data_dir = volume / "data"
        # The log lives outside the volume that fills up.
        server = Server(data_dir, free_port(), tmp_path / "server.log")
        server.start()
        try:
            token = issue_token(server)
            assert request(server, "GET", "/health/ready")[0] == 200
            for path in ("/health/live", "/health/ready"):
                status, headers, body = request(server, "HEAD", path)
                assert status == 200 and body == b"", (path, status, body)
            create_meeting(server, token)

            fill(volume / "filler")

            def ready_fails():
                status, headers, body = request(server, "GET", "/health/ready")
                return status != 200 and (status, headers, body)
            status, headers, body = wait_until(ready_fails, 30, interval=0.5, message="/health/ready to fail on a full disk")
            assert_problem(status, headers, body, 503)
            assert request(server, "HEAD", "/health/ready")[0] == 503

            status, headers, body = request(server, "POST", "/api/meetings", token, {"citizenRef": CITIZEN_REF})
            assert 500 <= status < 600, (status, body)
            assert_problem(status, headers, body, status)

            log = server.log_tail(400)
            failed_lines = [line for line in log.splitlines() if "request failed" in line]
            assert any("/api/meetings" in line and "disk is full" in line for line in failed_lines), log
            assert any("/health/ready" in line for line in failed_lines), log
            assert CITIZEN_REF not in log

            (volume / "filler").unlink()
            wait_until(lambda: request(server, "GET", "/health/ready")[0] == 200, 30, interval=0.5,
                       message="/health/ready to recover once space is free")
            assert create_meeting(server, token)["meetingId"]

            metrics = http_get(server.url("/metrics"))[1].decode()
            failures = re.search(r"^samtalerum_audit_write_failures_total (\S+)$", metrics, re.M)
            assert failures and float(failures.group(1)) >= 2, metrics
        finally:
            server.stop()


# --- Item 4: logs an operator can use ---------------------------------------------------------

def open_socket(server, token):
    ws = connect(f"wss://127.0.0.1:{server.port}/ws", ssl=insecure_context(), open_timeout=15)
    ws.send(json.dumps({"type": "hello", "v": 1, "token": token}))
    assert json.loads(ws.recv(timeout=15))["type"] == "welcome"
    return ws


def start_session(server, worker_token, meeting):
    worker = open_socket(server, worker_token)
    worker.send(json.dumps({"type": "join", "meetingId": meeting["meetingId"]}))
    citizen = open_socket(server, meeting["citizenInviteUrl"].split("#invite=")[1])
    citizen.send(json.dumps({"type": "join"}))
    admit_until_joined(worker, 30)
    return worker, citizen


def failed_tls_handshakes(port, count=3):
    """Clients that give up during the handshake: one refuses the self-signed certificate, one
    speaks plain HTTP to the TLS port, one sends garbage and closes."""
    for _ in range(count):
        strict = ssl.create_default_context()
        with contextlib.suppress(ssl.SSLError, OSError):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                strict.wrap_socket(raw, server_hostname="localhost")
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                raw.recv(100)
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                raw.sendall(b"\x16\x03\x01\x00\x05garbage")


@pytest.fixture(scope="module")
def json_server():
    servers = running_server(["--log-format", "json"])
    server = next(servers)
    try:
        yield server
    finally:
        servers.close()


@pytest.fixture(scope="module")
def exercised(json_server):
    """A meeting, a session that ends, a guest invite, a refused token, a signalling error and
    failed TLS handshakes, so every lifecycle line and every metric family exists."""
    server = json_server
    token = issue_token(server, subject=WORKER_SUBJECT)
    meeting = create_meeting(server, token, citizen_ref=CITIZEN_REF)
    status, _, body = request(server, "POST", f"/api/meetings/{meeting['meetingId']}/guests", token, {"guestRef": "JC-2026-9911"})
    assert status == 201, body
    worker, citizen = start_session(server, token, meeting)
    ops_token = issue_token(server, role="ops", subject="ops-e2e")
    sessions = json.loads(request(server, "GET", "/api/ops/sessions", ops_token)[2])
    citizen.send(json.dumps({"type": "no-such-message"}))
    with contextlib.suppress(Exception):
        citizen.recv(timeout=5)
    worker.send(json.dumps({"type": "leave"}))
    time.sleep(0.5)
    worker.close()
    citizen.close()
    assert request(server, "GET", "/api/whoami", "not-a-token")[0] == 401
    failed_tls_handshakes(server.port)

    def ended():
        return '"session_ended"' in Path(server.log_path).read_text()
    wait_until(ended, 30, interval=0.5, message="the session_ended log line")
    return {"server": server, "meeting": meeting, "ops": sessions}


def log_lines(server):
    return [line for line in Path(server.log_path).read_text(errors="replace").splitlines() if line.strip()]


def test_json_logs_are_one_object_per_line_with_lifecycle_events_and_no_references_or_addresses(exercised):
    server, meeting = exercised["server"], exercised["meeting"]
    records = []
    for line in log_lines(server):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
    for record in records:
        assert {"time", "level", "message"} <= record.keys(), record

    lifecycle = [r for r in records if "event" in r]
    events = {r["event"] for r in lifecycle}
    assert {"meeting_created", "guest_invited", "participant_joined", "participant_admitted",
            "session_started", "session_ended"} <= events, events
    meeting_id = meeting["meetingId"]
    assert all(r.get("meeting") == meeting_id for r in lifecycle), lifecycle

    # The same ids /api/ops shows for this meeting.
    ops_view = next(s for s in exercised["ops"]["sessions"] if s["meetingId"] == meeting_id)
    started = next(r for r in lifecycle if r["event"] == "session_started")
    assert started["session"] == ops_view["sessionId"], (started, ops_view)
    assert sorted(started["roles"]) == ["citizen", "worker"]
    ended = next(r for r in lifecycle if r["event"] == "session_ended")
    assert ended["session"] == ops_view["sessionId"] and ended["reason"], ended
    assert any(r["event"] == "participant_joined" and r.get("role") == "citizen" for r in lifecycle)

    text = Path(server.log_path).read_text()
    assert CITIZEN_REF not in text and WORKER_SUBJECT not in text and "JC-2026-9911" not in text
    address = re.compile(r"\b\d{1,3}(\.\d{1,3}){3}\b|::1\b")
    for record in lifecycle:
        assert not address.search(json.dumps(record)), record


def test_failed_tls_handshakes_are_counted_not_logged_as_errors(exercised):
    server = exercised["server"]
    records = [json.loads(line) for line in log_lines(server)]
    # (A warning of its own, e.g. connection caps lowered for a small open-file limit, may appear.)
    noisy = [r for r in records if r["level"] in ("error", "critical")
             or (r["level"] == "warning" and r.get("source", "").startswith(("Hummingbird", "NIO")))]
    assert not noisy, noisy
    metrics = http_get(server.url("/metrics"))[1].decode()
    count = re.search(r"^samtalerum_connection_failures_total (\S+)$", metrics, re.M)
    assert count and float(count.group(1)) >= 3, metrics


# --- Item 5: metrics ----------------------------------------------------------------------------

def families(metrics_text):
    return {match.group(1): match.group(2) for match in re.finditer(r"^# TYPE (\S+) (\S+)$", metrics_text, re.M)}


def test_metrics_pass_promtool_and_carry_build_info_audit_and_participant_series(exercised):
    server = exercised["server"]
    status, body = http_get(server.url("/metrics"))
    assert status == 200
    text = body.decode()
    checked = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    version = subprocess.run([str(server_binary()), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    assert re.search(r'^samtalerum_build_info\{version="%s"\} 1(\.0)?$' % re.escape(version), text, re.M), text
    kinds = families(text)
    assert kinds.get("samtalerum_audit_write_duration_seconds") == "histogram"
    assert kinds.get("samtalerum_audit_write_failures_total") == "counter"
    assert re.search(r'^samtalerum_participants\{role="worker"\} ', text, re.M), text
    assert re.search(r'^samtalerum_audit_write_duration_seconds_count (\d+)', text, re.M)

    # Every exported family is documented in Docs/METRICS.md.
    documented = METRICS_DOC.read_text()
    missing = [name for name in kinds if f"`{name}`" not in documented]
    assert not missing, f"not in Docs/METRICS.md: {missing}"


METRIC_NAME = re.compile(r"\b((?:samtalerum|turn|connections)_[a-z0-9_]+)")


def queried_metrics(expressions):
    names = set()
    for expression in expressions:
        names |= set(METRIC_NAME.findall(expression))
    return names


def exported(name, kinds):
    if name in kinds:
        return True
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return kinds.get(base) == "histogram"


def test_the_grafana_dashboard_queries_only_metrics_the_server_exports(exercised):
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(expressions) >= 10
    kinds = families(http_get(exercised["server"].url("/metrics"))[1].decode())
    names = queried_metrics(expressions)
    assert names, expressions
    missing = sorted(name for name in names if not exported(name, kinds))
    assert not missing, f"the dashboard queries metrics /metrics does not export: {missing}"


def test_the_alert_rules_pass_promtool_and_use_exported_metrics(exercised):
    checked = subprocess.run([promtool(), "check", "rules", str(ALERT_RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    expressions = re.findall(r"^\s*expr:\s*(.+)$", ALERT_RULES.read_text(), re.M)
    kinds = families(http_get(exercised["server"].url("/metrics"))[1].decode())
    missing = sorted(name for name in queried_metrics(expressions) if not exported(name, kinds))
    assert not missing, f"alert rules use metrics /metrics does not export: {missing}"
