"""A minimal STUN/TURN client that shows every attribute on the wire (aioice hides unknown ones
and drops unsigned replies silently): enough to Allocate, Refresh and CreatePermission with
long-term REST credentials over UDP or TCP, and to check how replies are signed."""

import base64
import hashlib
import hmac
import ipaddress
import os
import socket
import struct
import time
import zlib

MAGIC = 0x2112A442

BINDING, ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND = 0x001, 0x003, 0x004, 0x006, 0x007, 0x008, 0x009
REQUEST, INDICATION, SUCCESS, ERROR = 0x000, 0x010, 0x100, 0x110

USERNAME, MESSAGE_INTEGRITY, ERROR_CODE, UNKNOWN_ATTRIBUTES, LIFETIME = 0x0006, 0x0008, 0x0009, 0x000A, 0x000D
XOR_PEER_ADDRESS, DATA_ATTR, REALM, NONCE, XOR_RELAYED_ADDRESS = 0x0012, 0x0013, 0x0014, 0x0015, 0x0016
REQUESTED_TRANSPORT, XOR_MAPPED_ADDRESS, MESSAGE_INTEGRITY_SHA256, FINGERPRINT = 0x0019, 0x0020, 0x001C, 0x8028


def message_type(method, cls):
    return (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | cls


def rest_credentials(secret, subject, ttl):
    """coturn's REST shape: username `<expiry>:<id>`, password base64(HMAC-SHA1(secret, username))."""
    username = "%d:%s" % (int(time.time()) + ttl, subject)
    password = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
    return username, password


def long_term_key(username, realm, password):
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()


def xor_address(host, port, txid):
    ip = ipaddress.ip_address(host)
    xport = port ^ (MAGIC >> 16)
    if ip.version == 4:
        return struct.pack("!BBH", 0, 1, xport) + struct.pack("!I", int(ip) ^ MAGIC)
    mask = struct.pack("!I", MAGIC) + txid
    return struct.pack("!BBH", 0, 2, xport) + bytes(a ^ b for a, b in zip(ip.packed, mask))


def unxor_address(value, txid):
    family, xport = value[1], struct.unpack("!H", value[2:4])[0]
    port = xport ^ (MAGIC >> 16)
    if family == 1:
        return str(ipaddress.IPv4Address(struct.unpack("!I", value[4:8])[0] ^ MAGIC)), port
    mask = struct.pack("!I", MAGIC) + txid
    return str(ipaddress.IPv6Address(bytes(a ^ b for a, b in zip(value[4:20], mask)))), port


def _pad(data):
    return data + b"\0" * (-len(data) % 4)


def encode(method, cls, attrs, txid=None, key=None, sha256=False, fingerprint=False):
    """`attrs`: [(type, bytes)]. Signed with `key` (MESSAGE-INTEGRITY, or -SHA256) if given."""
    txid = txid or os.urandom(12)
    body = b"".join(struct.pack("!HH", t, len(v)) + _pad(v) for t, v in attrs)
    header = lambda length: struct.pack("!HHI", message_type(method, cls), length, MAGIC) + txid  # noqa: E731
    if key is not None:
        size = 32 if sha256 else 20
        digest = hmac.new(key, header(len(body) + 4 + size) + body, hashlib.sha256 if sha256 else hashlib.sha1).digest()
        body += struct.pack("!HH", MESSAGE_INTEGRITY_SHA256 if sha256 else MESSAGE_INTEGRITY, size) + digest
    if fingerprint:
        crc = (zlib.crc32(header(len(body) + 8) + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += struct.pack("!HHI", FINGERPRINT, 4, crc)
    return header(len(body)) + body


class Reply:
    def __init__(self, data):
        self.raw = data
        mtype, length, _ = struct.unpack("!HHI", data[:8])
        self.type = mtype
        self.cls = mtype & 0x0110
        self.txid = data[8:20]
        self.attrs = []  # [(type, value, offset of the attribute header)]
        offset = 20
        while offset + 4 <= 20 + length:
            t, n = struct.unpack("!HH", data[offset:offset + 4])
            self.attrs.append((t, data[offset + 4:offset + 4 + n], offset))
            offset += 4 + n + (-n % 4)

    def get(self, attr_type):
        return next((v for t, v, _ in self.attrs if t == attr_type), None)

    def has(self, attr_type):
        return any(t == attr_type for t, _, _ in self.attrs)

    @property
    def error(self):
        value = self.get(ERROR_CODE)
        return None if value is None else (value[2] & 0x7) * 100 + value[3]

    @property
    def lifetime(self):
        value = self.get(LIFETIME)
        return None if value is None else struct.unpack("!I", value)[0]

    def relayed(self):
        return unxor_address(self.get(XOR_RELAYED_ADDRESS), self.txid)

    def integrity_valid(self, key):
        """Which integrity attribute the reply carries and whether it verifies: 'sha1', 'sha256', None."""
        for t, value, offset in self.attrs:
            if t in (MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256):
                sha256 = t == MESSAGE_INTEGRITY_SHA256
                header = bytearray(self.raw[:offset])
                struct.pack_into("!H", header, 2, offset + 4 + len(value) - 20)
                digest = hmac.new(key, bytes(header), hashlib.sha256 if sha256 else hashlib.sha1).digest()
                if not hmac.compare_digest(digest[:len(value)], value):
                    return "invalid"
                return "sha256" if sha256 else "sha1"
        return None


class Client:
    """One 5-tuple to the relay (UDP, or TCP framed by STUN lengths)."""

    def __init__(self, host, port, transport="udp", timeout=5.0, source=None):
        self.server = (host, port)
        self.transport = transport
        self.timeout = timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if transport == "udp":
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            if source:
                self.sock.bind((source, 0))
        else:
            self.sock = socket.create_connection(self.server, timeout=timeout, source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        self.realm = self.nonce = self.key = None

    def close(self):
        self.sock.close()

    def send(self, data):
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            self.sock.sendall(data)

    def receive(self, timeout=None):
        self.sock.settimeout(timeout or self.timeout)
        if self.transport == "udp":
            data, _ = self.sock.recvfrom(65536)
            return Reply(data)
        header = self._read(20)
        length = struct.unpack("!H", header[2:4])[0]
        return Reply(header + self._read(length))

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("relay closed the connection")
            data += chunk
        return data

    def transact(self, data, attempts=4):
        """Sends until the reply with the same transaction id arrives (UDP retransmits)."""
        txid = data[8:20]
        for _ in range(attempts if self.transport == "udp" else 1):
            self.send(data)
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                try:
                    reply = self.receive(max(0.05, deadline - time.monotonic()))
                except socket.timeout:
                    break
                if reply.txid == txid and reply.cls in (SUCCESS, ERROR):
                    return reply
        raise TimeoutError("no reply from the relay")

    def authenticated(self, method, attrs, username, password, sha256=False):
        """A long-term-credential request: learns REALM/NONCE from the 401 (or 438) first."""
        for _ in range(3):
            if self.nonce is None:
                reply = self.transact(encode(method, REQUEST, attrs))
                if reply.error not in (401, 438):
                    return reply
                self.realm, self.nonce = reply.get(REALM).decode(), reply.get(NONCE)
            self.key = long_term_key(username, self.realm, password)
            signed = attrs + [(USERNAME, username.encode()), (REALM, self.realm.encode()), (NONCE, self.nonce)]
            reply = self.transact(encode(method, REQUEST, signed, key=self.key, sha256=sha256))
            if reply.error == 438:
                self.nonce = reply.get(NONCE)
                continue
            return reply
        return reply

    def allocate(self, username, password, lifetime=None, sha256=False):
        attrs = [(REQUESTED_TRANSPORT, bytes([17, 0, 0, 0]))]
        if lifetime is not None:
            attrs.append((LIFETIME, struct.pack("!I", lifetime)))
        return self.authenticated(ALLOCATE, attrs, username, password, sha256=sha256)

    def create_permission(self, username, password, peer):
        """IPv4 peers only: an IPv6 XOR-PEER-ADDRESS would depend on each attempt's transaction id."""
        attrs = [(XOR_PEER_ADDRESS, xor_address(peer[0], peer[1], bytes(12)))]
        return self.authenticated(CREATE_PERMISSION, attrs, username, password)
