"""A console that hangs right after connecting: its socket stays open and its kernel
takes what arrives until a small receive buffer is full, but nothing reads it. At the
end it wakes up and reads what had reached it (a plain socket: no client library
buffering on its behalf)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

RECEIVE_BUFFER = 4096


class StuckConsole:
    def __init__(self, port: int, token: str, site_id: int) -> None:
        self.port = port
        self.token = token
        self.site_id = site_id
        self.sock: socket.socket | None = None
        self._buf = b""

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /api/v1/events/stream?site_id={self.site_id}&after_seq=0 HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {self.token}\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        self.sock = sock
        while b"\r\n\r\n" not in self._buf:
            await self._more()
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"no WebSocket: {head[:200]!r}")

    async def wake_and_read(self) -> tuple[list[dict[str, Any]], str]:
        """Everything it was sent, until the server's close frame or the end of the
        connection; and how it ended ("close", "eof" or "reset")."""
        messages: list[dict[str, Any]] = []
        try:
            while True:
                opcode, payload = await self._frame()
                if opcode == 0x1:
                    messages.append(json.loads(payload))
                elif opcode == 0x8:
                    return messages, "close"
        except EOFError:
            return messages, "eof"
        except ConnectionResetError:
            return messages, "reset"

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()

    async def _more(self) -> None:
        assert self.sock is not None
        chunk = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        if not chunk:
            raise EOFError
        self._buf += chunk

    async def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            await self._more()
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    async def _frame(self) -> tuple[int, bytes]:
        # A server's frames are not masked, and aiohttp does not fragment ours.
        first, second = await self._take(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self._take(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self._take(8))
        return first & 0x0F, await self._take(size)
