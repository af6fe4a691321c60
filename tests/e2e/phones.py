"""A test phone: the python-socketio client speaking the /device protocol."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import socketio
from sqlalchemy import create_engine, text


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


def count(url: str, person_id: int) -> int:
    """Return how many positions a person has."""
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(
            text("SELECT count(*) FROM positions WHERE person_id = :p"), {"p": person_id}
        ).scalar_one()
    engine.dispose()
    return n


class ResendingPhone:
    """A phone that keeps every fix until an ack says it is stored, as the real app does."""

    def __init__(self, url: str, token: str) -> None:
        """Prepare a phone; run() streams until stop is set."""
        self.url, self.token = url, token
        self.unacked: list[dict] = []
        self.generated = 0
        self.stored = self.duplicates = 0
        self.failures = 0
        self.stop = threading.Event()
        self.phone: TestPhone | None = None

    def _ensure_connected(self) -> None:
        if self.phone is not None and not self.phone.client.connected:
            # The server closed the connection between two sends: that too is a failure the
            # phone noticed, even though no send was in flight.
            self.failures += 1
            self.phone = None
        if self.phone is None:
            self.phone = TestPhone(self.url, self.token).connect()

    def _flush(self) -> None:
        batch = self.unacked[:50]
        try:
            self._ensure_connected()
            ack = self.phone.send(batch, timeout=3)
        except (socketio.exceptions.SocketIOError, OSError):
            self.failures += 1
            self.phone = None
            time.sleep(0.2)
            return
        if ack.get("ok"):
            self.stored += ack["stored"]
            self.duplicates += ack["duplicates"]
            assert ack["rejected"] == []
            del self.unacked[: len(batch)]
        else:
            assert ack.get("retry") is True, ack
            self.failures += 1
            time.sleep(0.2)

    def run(self) -> None:
        """Make a fix every 20 ms and send what is unacknowledged."""
        base = now_ms() - 60_000
        while not self.stop.is_set():
            for _ in range(5):
                self.unacked.append({"ts": base + self.generated * 10, "lat": 39.9, "lon": 116.4})
                self.generated += 1
            self._flush()
            time.sleep(0.02)
        deadline = time.monotonic() + 30
        while self.unacked and time.monotonic() < deadline:
            self._flush()
        if self.phone is not None:
            self.phone.close()
