"""What the real server writes about a call: at trace level its log holds no frame content
(chat, notes); the audit CLI's anchor/verify --anchor work on a live data directory; a hang-up
while the file system is full (a real small tmpfs, filled) is recorded as a hang-up, with its own
time, once space is free, not later as server_restart."""
import asyncio
import contextlib
import json
import sqlite3
import urllib.error

import pytest
from websockets.asyncio.client import connect

from conftest import Server, create_meeting, enter, expect_type, free_port, insecure_context, issue_token, wait_until, ws_url

MARKER = "CHAT-CONTENT-MUST-NOT-BE-LOGGED-4711"


@pytest.mark.parametrize("server", [("--log-level", "trace")], indirect=True)
def test_trace_logging_never_prints_chat_or_notes(server):
    token = issue_token(server)
    meeting = create_meeting(server, token)
    invite = meeting["citizenInviteUrl"].split("#invite=")[1]

    async def scenario():
        async with connect(ws_url(server), ssl=insecure_context(), ping_interval=None) as worker, \
                connect(ws_url(server), ssl=insecure_context(), ping_interval=None) as citizen:
            await enter(worker, token, meeting["meetingId"])
            await enter(citizen, invite)
            # Text first: the WebSocket library's trace line shows a frame's first 24 bytes in hex.
            await worker.send(json.dumps({"text": MARKER, "type": "note"}, separators=(",", ":")))
            await expect_type(citizen, "note")
            await expect_type(worker, "peer-waiting")
            await worker.send(json.dumps({"type": "admit"}))
            await expect_type(citizen, "peer-joined")
            await worker.send(json.dumps({"text": MARKER, "type": "chat"}, separators=(",", ":")))
            received = await expect_type(citizen, "chat")
            assert MARKER in received["text"]
            await citizen.send(json.dumps({"type": "leave"}))
            await expect_type(worker, "peer-left")

    asyncio.run(scenario())
    server.stop()
    log = server.log_path.read_text(errors="replace")
    as_hex = " ".join(f"{b:02x}" for b in MARKER[:8].encode())
    assert MARKER not in log and as_hex not in log, "frame content reached the server log"


def test_an_anchor_of_the_live_trail_verifies_and_catches_a_cut(server, tmp_path):
    token = issue_token(server)
    create_meeting(server, token)
    anchor = server.cli("audit", "anchor").strip()
    record = json.loads(anchor)
    assert record["seq"] >= 2 and len(record["signature"]) == 128
    anchors = tmp_path / "anchors.log"
    anchors.write_text(f"Dec  1 03:00:00 host samtalerum-anchor: {anchor}\n")
    assert "OK" in server.cli("audit", "verify", "--anchor", str(anchors))
    # An anchor naming a record the trail never had (a trail cut back behind it) fails.
    record["seq"] += 1000
    forged = tmp_path / "later.log"
    forged.write_text(json.dumps(record) + "\n")
    with pytest.raises(AssertionError, match="FAILED|failed"):
        server.cli("audit", "verify", "--anchor", str(forged))


def test_a_hang_up_on_a_full_disk_is_recorded_as_a_hang_up_once_space_is_free(tmp_path):
    from test_ops_observability import fill, small_tmpfs

    with small_tmpfs() as volume:
        server = Server(volume / "data", free_port(), tmp_path / "server.log")
        server.start()
        try:
            token = issue_token(server)
            meeting = create_meeting(server, token)
            invite = meeting["citizenInviteUrl"].split("#invite=")[1]

            async def call_then_hang_up_on_a_full_disk():
                async with connect(ws_url(server), ssl=insecure_context(), ping_interval=None) as worker, \
                        connect(ws_url(server), ssl=insecure_context(), ping_interval=None) as citizen:
                    await enter(worker, token, meeting["meetingId"])
                    await enter(citizen, invite)
                    await expect_type(worker, "peer-waiting")
                    await worker.send(json.dumps({"type": "admit"}))
                    started = await expect_type(citizen, "peer-joined")
                    await asyncio.sleep(2)
                    fill(volume / "filler")
                    await citizen.send(json.dumps({"type": "leave"}))
                    # The worker is told the room could not be recorded (or that the citizen left).
                    with contextlib.suppress(Exception):
                        await expect_type(worker, "peer-left", timeout=10)
                    return started["sessionId"]

            session = asyncio.run(call_then_hang_up_on_a_full_disk())
            wait_until(lambda: "kept in memory" in server.log_tail(400), 30, interval=0.5,
                       message="the store to keep the unrecorded end")
            (volume / "filler").unlink()
            # The next record of anything carries the kept end in first.
            wait_until(lambda: _created(server, token), 30, interval=0.5, message="a meeting to be created again")
        finally:
            server.stop()
        db = sqlite3.connect(f"file:{volume / 'data' / 'audit.sqlite'}?mode=ro", uri=True)
        started_at, ended_at, reason = db.execute(
            "SELECT startedAt, endedAt, endReason FROM session WHERE id = ?", (session,)).fetchone()
        db.close()
        assert reason == "hangup", (reason, server.log_tail(80))
        assert ended_at - started_at >= 2000


def _created(server, token):
    try:
        return bool(create_meeting(server, token)["meetingId"])
    except (OSError, AssertionError, urllib.error.HTTPError):
        return False
