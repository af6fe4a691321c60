"""A lean asyncio Socket.IO client for /device, speaking Engine.IO v4 framing directly.

One python-socketio client per simulated phone costs too much memory and CPU to drive
thousands of phones from one process; this client keeps one aiohttp websocket and a dict
of pending acks per phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import aiohttp

NAMESPACE = "/device"


class SocketClosedError(ConnectionError):
    """The websocket closed or the namespace refused the connection."""


class DeviceSocket:
    """One phone's connection to the /device namespace."""

    def __init__(self, url: str, token: str) -> None:
        """Prepare a connection to the server at `url` (http://host:port) with a token."""
        base = url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        self.ws_url = f"{base}/socket.io/?EIO=4&transport=websocket"
        self.token = token
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.handlers: dict[str, Callable[[Any], None]] = {}
        self.counted = False  # whether the simulator counts this connection as open

    async def connect(self, session: aiohttp.ClientSession, timeout_s: float = 10) -> None:
        """Open the websocket and join /device; raise SocketClosedError if refused."""
        self.ws = await session.ws_connect(self.ws_url, heartbeat=None, timeout=timeout_s)
        opened = await asyncio.wait_for(self.ws.receive_str(), timeout_s)
        if not opened.startswith("0"):
            raise SocketClosedError(f"unexpected Engine.IO open packet {opened[:40]!r}")
        await self.ws.send_str(f"40{NAMESPACE},{json.dumps({'token': self.token})}")
        while True:
            packet = await asyncio.wait_for(self.ws.receive_str(), timeout_s)
            if packet == "2":
                await self.ws.send_str("3")
            elif packet.startswith(f"40{NAMESPACE},"):
                break
            elif packet.startswith(f"44{NAMESPACE},"):
                reason = json.loads(packet.split(",", 1)[1]).get("message")
                raise SocketClosedError(f"refused: {reason}")
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        """Answer pings, resolve acks and dispatch server events until the socket closes."""
        assert self.ws is not None
        try:
            async for message in self.ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                packet = message.data
                if packet == "2":
                    await self.ws.send_str("3")
                elif packet.startswith(f"43{NAMESPACE},"):
                    body = packet[len(NAMESPACE) + 3 :]
                    split = body.index("[")
                    future = self._acks.pop(int(body[:split]), None)
                    if future is not None and not future.done():
                        future.set_result(json.loads(body[split:])[0])
                elif packet.startswith(f"42{NAMESPACE},"):
                    name, *args = json.loads(packet[len(NAMESPACE) + 3 :])
                    if name in self.handlers:
                        self.handlers[name](args[0] if args else None)
        finally:
            for future in self._acks.values():
                if not future.done():
                    future.set_exception(SocketClosedError("connection closed"))
            self._acks.clear()

    async def call(self, event: str, payload: Any, timeout_s: float = 10) -> Any:
        """Send an event and return its acknowledgement."""
        return await self.call_json(event, json.dumps(payload), timeout_s)

    async def call_json(self, event: str, payload_json: str, timeout_s: float = 10) -> Any:
        """Send an event whose payload is already JSON text; return its acknowledgement.

        Load generators format their batches by hand: encoding dicts with json.dumps costs
        them several times as much, on the CPUs they share with the server they measure.
        """
        if self.ws is None or self.ws.closed:
            raise SocketClosedError("not connected")
        ack_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        await self.ws.send_str(f"42{NAMESPACE},{ack_id}[{json.dumps(event)},{payload_json}]")
        try:
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self._acks.pop(ack_id, None)

    @property
    def connected(self) -> bool:
        """Return whether the websocket is open."""
        return self.ws is not None and not self.ws.closed

    async def close(self) -> None:
        """Close the connection."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
