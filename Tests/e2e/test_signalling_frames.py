"""Signalling against foreign WebSocket peers (Docs/PROTOCOL.md): a client that stops reading
(the `websockets` library over a socket whose reads are paused), and hand-made frames over raw
TLS that break RFC 6455 (invalid UTF-8 in a text frame, an unmasked client frame). Each case
checks the close code the offender gets and that the rest of the room is told and still served.
"""
import asyncio
import base64
import json
import os
import socket
import ssl
import struct
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import create_meeting, enter, expect_type, insecure_context, issue_token, ws_url

# Bounds for the flood: far beyond what the server may queue for one client (512 messages plus
# the kernel's socket buffers, a few MB), and never longer than this.
FLOOD_MAX_MESSAGES = 12_000
FLOOD_SECONDS = 120
CHAT_TEXT = "x" * 2000


def small_receive_buffer_socket(port):
    """A connected socket that takes little into its kernel buffer once the reader pauses."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


def test_a_client_that_stops_reading_is_closed_as_slow_consumer_and_the_room_is_told(server):
    token = issue_token(server)
    meeting = create_meeting(server, token)
    invite = meeting["citizenInviteUrl"].split("#invite=")[1]

    async def scenario():
        worker = await connect(ws_url(server), ssl=insecure_context(), ping_interval=None, max_size=2**20)
        await enter(worker, token, meeting["meetingId"])
        citizen = await connect(ws_url(server), ssl=insecure_context(), server_hostname="localhost",
                                sock=small_receive_buffer_socket(server.port), ping_interval=None, max_size=2**20)
        await enter(citizen, invite)
        await expect_type(worker, "peer-waiting")
        await worker.send(json.dumps({"type": "admit"}))
        await expect_type(citizen, "peer-joined")
        await expect_type(worker, "peer-joined")

        # The citizen's program stops reading its socket; the worker keeps chatting.
        citizen.transport.pause_reading()
        told = asyncio.get_running_loop().create_future()

        async def worker_listens():
            while True:
                message = json.loads(await worker.recv())
                if message["type"] in ("peer-reconnecting", "peer-left") and not told.done():
                    told.set_result(message)

        listener = asyncio.create_task(worker_listens())
        sent = 0
        started = time.monotonic()
        while not told.done() and sent < FLOOD_MAX_MESSAGES and time.monotonic() - started < FLOOD_SECONDS:
            await worker.send(json.dumps({"type": "chat", "text": CHAT_TEXT}))
            sent += 1
            if sent % 50 == 0:
                await asyncio.sleep(0)
        notice = await asyncio.wait_for(told, 30)
        assert notice == {"type": "peer-reconnecting", "role": "citizen", "peer": "citizen"}, notice
        flood_seconds = time.monotonic() - started

        # Once it reads again it finds what was already on the way, then the reason and the close.
        citizen.transport.resume_reading()
        chats, last = 0, None
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                message = json.loads(await asyncio.wait_for(citizen.recv(), 30))
                chats += message["type"] == "chat"
                last = message
        assert closed.value.rcvd is not None, "no close frame from the server"
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "slow-consumer")
        assert last is not None and last["type"] == "error" and last["code"] == "slow-consumer" and last["fatal"]
        assert chats < sent, "everything arrived: the client was never behind"

        # The worker is still served.
        await worker.send(json.dumps({"type": "ping", "id": 77}))
        listener.cancel()
        assert (await expect_type(worker, "pong"))["id"] == 77
        await worker.close()
        print(f"slow consumer: {sent} chats of {len(CHAT_TEXT)} characters sent, {chats} delivered, "
              f"noticed after {flood_seconds:.1f} s")

    asyncio.run(scenario())


class RawClient:
    """A WebSocket client written by hand over TLS, to send frames no library would."""

    def __init__(self, port):
        raw = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.sock = insecure_context().wrap_socket(raw, server_hostname="localhost")
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /ws HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "closed during the upgrade"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_frame(self, opcode, payload, masked=True):
        header = bytes([0x80 | opcode])
        length = len(payload)
        mask_bit = 0x80 if masked else 0
        if length < 126:
            header += bytes([mask_bit | length])
        elif length < 65536:
            header += bytes([mask_bit | 126]) + struct.pack("!H", length)
        else:
            header += bytes([mask_bit | 127]) + struct.pack("!Q", length)
        if masked:
            key = os.urandom(4)
            payload = key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + payload)

    def send_json(self, message, masked=True):
        self.send_frame(0x1, json.dumps(message).encode(), masked)

    def _exact(self, count):
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("closed without a close frame")
            data += chunk
        return data

    def next_frame(self):
        first, second = self._exact(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._exact(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._exact(8))[0]
        assert not second & 0x80, "server frames are never masked"
        return first & 0x0F, self._exact(length)

    def next_json(self):
        opcode, payload = self.next_frame()
        assert opcode == 0x1, f"expected a text frame, got opcode {opcode}"
        return json.loads(payload)

    def close_code(self):
        """Reads until the server's close frame; its code."""
        while True:
            opcode, payload = self.next_frame()
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0]

    def close(self):
        self.sock.close()


def waiting_citizen_and_worker(server):
    """A worker in the room (websockets) and a raw citizen in its waiting room."""
    token = issue_token(server)
    meeting = create_meeting(server, token)
    invite = meeting["citizenInviteUrl"].split("#invite=")[1]
    return token, meeting, invite


@pytest.mark.parametrize("violation", ["invalid-utf8", "unmasked"])
def test_frames_that_break_rfc6455_close_with_its_code_and_the_room_goes_on(server, violation):
    token, meeting, invite = waiting_citizen_and_worker(server)

    async def scenario():
        worker = await connect(ws_url(server), ssl=insecure_context(), ping_interval=None)
        await enter(worker, token, meeting["meetingId"])
        citizen = await asyncio.to_thread(RawClient, server.port)
        await asyncio.to_thread(citizen.send_json, {"type": "hello", "v": 1, "token": invite})
        assert (await asyncio.to_thread(citizen.next_json))["type"] == "welcome"
        await asyncio.to_thread(citizen.send_json, {"type": "join"})
        assert (await asyncio.to_thread(citizen.next_json))["type"] == "joined"
        await expect_type(worker, "peer-waiting")

        if violation == "invalid-utf8":
            # A lone continuation byte and a truncated sequence inside an otherwise valid message.
            await asyncio.to_thread(citizen.send_frame, 0x1, b'{"type": "chat", "text": "\x80 \xe2\x82"}')
            expected = 1007
        else:
            await asyncio.to_thread(citizen.send_json, {"type": "ping", "id": 5}, False)
            expected = 1002
        assert await asyncio.to_thread(citizen.close_code) == expected
        citizen.close()

        left = await expect_type(worker, "peer-left")
        assert left == {"type": "peer-left", "role": "citizen", "peer": "citizen", "reason": "protocol_error"}
        await worker.send(json.dumps({"type": "ping", "id": 9}))
        assert (await expect_type(worker, "pong"))["id"] == 9
        await worker.close()

    asyncio.run(scenario())


def test_a_ping_with_a_non_integer_id_is_an_invalid_message(server):
    token = issue_token(server)

    async def scenario():
        ws = await connect(ws_url(server), ssl=insecure_context(), ping_interval=None)
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": token}))
        await expect_type(ws, "welcome")
        for id_value in (1.5, "7", None, [1]):
            await ws.send(json.dumps({"type": "ping", "id": id_value}))
            error = await expect_type(ws, "error")
            assert (error["code"], error["fatal"], error.get("inReplyTo")) == ("invalid-message", False, "ping"), (id_value, error)
        await ws.send(json.dumps({"type": "ping", "id": 3}))
        assert (await expect_type(ws, "pong"))["id"] == 3
        await ws.close()

    asyncio.run(scenario())
