"""A test phone: the python-socketio client speaking the /device protocol."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import socketio


def now_ms() -> int:
    """Return the current time in epoch milliseconds."""
    return int(datetime.now(UTC).timestamp() * 1000)


class TestPhone:
    """A connected /device client that records why a connection was refused."""

    __test__ = False  # not a pytest test class

    def __init__(self, url: str, token: str | None) -> None:
        """Prepare a client for the server at `url`."""
        self.url = url
        self.token = token
        self.refusal: Any = None
        self.disconnects = 0
        self.client = socketio.Client(reconnection=False)
        self.client.on("connect_error", self._on_connect_error, namespace="/device")
        self.client.on("disconnect", self._on_disconnect, namespace="/device")

    def _on_connect_error(self, data: Any) -> None:
        self.refusal = data

    def _on_disconnect(self, *args: Any) -> None:
        self.disconnects += 1

    def connect(self) -> TestPhone:
        """Connect over websocket, presenting the token."""
        auth = {"token": self.token} if self.token is not None else None
        self.client.connect(
            self.url, namespaces=["/device"], auth=auth, transports=["websocket"], wait_timeout=10
        )
        return self

    def send(self, positions: list[dict[str, Any]] | Any, timeout: float = 15) -> dict[str, Any]:
        """Send a `positions` batch and return the acknowledgement."""
        payload = {"positions": positions} if isinstance(positions, list) else positions
        return self.client.call("positions", payload, namespace="/device", timeout=timeout)

    def call(self, event: str, payload: Any, timeout: float = 15) -> Any:
        """Send any event and return its acknowledgement."""
        return self.client.call(event, payload, namespace="/device", timeout=timeout)

    def close(self) -> None:
        """Disconnect."""
        if self.client.connected:
            self.client.disconnect()

    def wait_disconnected(self, timeout: float = 5) -> bool:
        """Wait until the server has closed the connection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.client.connected:
                return True
            time.sleep(0.05)
        return False
