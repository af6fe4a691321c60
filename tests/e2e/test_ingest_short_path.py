"""The ingest endpoints' short path (tracker.ingest.worker) answers as gunicorn's own path.

Two real servers on the same database: one with the default settings (the short path),
one with an access log configured, which sends every request through gunicorn's WSGI
path. The same raw requests, sent over raw sockets, must get the same bytes back, the
Date header aside, including keep-alive and close, HEAD, HTTP/1.0, chunked bodies and
errors.
"""

from __future__ import annotations

import base64
import re
import socket
import time
from collections.abc import Iterator

import orjson
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ServerProcess


@pytest.fixture(scope="module")
def servers(database_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Start a short-path server and a gunicorn-path server."""
    short = ServerProcess(database_url)
    full = ServerProcess(database_url, {"GUNICORN_CMD_ARGS": "--access-logfile /dev/null"})
    short.start()
    full.start()
    yield short, full
    short.stop()
    full.stop()


def exchange(url: str, *requests: bytes) -> list[bytes]:
    """Send requests one after another on one connection; return each answer in order.

    An answer is its head and body; a HEAD request's answer has no body. After an answer
    that says `Connection: close` the connection must be closed by the server.
    """
    host, port = url.removeprefix("http://").split(":")
    got: list[bytes] = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        buffer = b""
        for raw in requests:
            sock.sendall(raw)
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                assert chunk, f"connection closed before an answer to {raw[:40]!r}"
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))
            if raw.startswith(b"HEAD"):
                length = 0
            while len(buffer) < length:
                buffer += sock.recv(65536)
            got.append(head + b"\r\n\r\n" + buffer[:length])
            buffer = buffer[length:]
        if b"Connection: close" in got[-1]:
            sock.settimeout(5)
            assert sock.recv(1) == b"", "the server kept a connection it said it would close"
    return got


def without_date(answer: bytes) -> bytes:
    """Return an answer without its Date header, the one part that may differ."""
    return re.sub(rb"(?m)^Date: [^\r]*\r\n", b"", answer)


def osmand_get(token: str, ts: int, version: str = "1.1", extra: str = "") -> bytes:
    """Return a raw Traccar Client request."""
    return (
        f"GET /osmand?id={token}&lat=39.91&lon=116.40&timestamp={ts}&hdop=5&altitude=50"
        f"&speed=1.2&bearing=90&batt=80 HTTP/{version}\r\nHost: t\r\n{extra}\r\n"
    ).encode()


def owntracks_post(token: str, ts: int) -> bytes:
    """Return a raw OwnTracks HTTP-mode request, the token as Basic auth's password."""
    body = orjson.dumps({"_type": "location", "lat": 39.91, "lon": 116.4, "tst": ts, "acc": 8})
    auth = base64.b64encode(f"user:{token}".encode()).decode()
    return (
        f"POST /owntracks HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def positions_chunked(token: str, ts: int) -> bytes:
    """Return a raw `POST /api/v1/positions` with a chunked body."""
    body = orjson.dumps(
        {"positions": [{"lat": 39.91, "lon": 116.4, "ts": ts * 1000, "accuracy": 5}]}
    )
    half = len(body) // 2
    chunks = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:half], body[half:])
    )
    return (
        (
            f"POST /api/v1/positions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        + chunks
        + b"0\r\n\r\n"
    )


def test_the_short_path_is_on_by_default_and_off_with_an_access_log(servers) -> None:
    short, full = servers
    assert "short path for the HTTP ingest endpoints: on" in short.logs()
    assert "short path for the HTTP ingest endpoints: off" in full.logs()


def test_short_path_answers_are_gunicorns_byte_for_byte(servers, make_phone, database_url):
    short, full = servers
    phone, unknown = make_phone(), "no-such-token-0000"
    base = int(time.time()) - 600

    def conversation(url: str, ts: int) -> list[bytes]:
        answers = exchange(
            url,
            osmand_get(phone.token, ts),  # stored
            osmand_get(phone.token, ts),  # the same fix again: a duplicate
            osmand_get(phone.token, ts + 1, extra="X-Extra: 1\r\n"),
            osmand_get(unknown, ts),  # 404, as Traccar's own server answers
            owntracks_post(phone.token, ts + 2),
            positions_chunked(phone.token, ts + 3),
            b"PUT /owntracks HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",  # 405
            b"HEAD " + osmand_get(phone.token, ts + 4)[4:],
            osmand_get(phone.token, ts + 5, extra="Connection: close\r\n"),
        )
        answers += exchange(url, osmand_get(phone.token, ts + 6, version="1.0"))
        return [without_date(a) for a in answers]

    # Different fixes for each server, the same shape of conversation.
    from_short = conversation(short.url, base)
    from_full = conversation(full.url, base + 100)
    assert len(from_short) == 10
    for mine, theirs in zip(from_short, from_full, strict=True):
        assert mine == theirs
    assert from_short[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"stored":1' in from_short[0] and b'"duplicates":1' in from_short[1]
    assert from_short[3].startswith(b"HTTP/1.1 404 NOT FOUND\r\n")
    assert from_short[4].endswith(b"\r\n\r\n[]")
    assert b'"stored":1' in from_short[5]
    assert from_short[6].startswith(b"HTTP/1.1 405 ")
    assert b"Connection: keep-alive" in from_short[7] and from_short[7].endswith(b"\r\n\r\n")
    assert b"Connection: close" in from_short[8]
    assert (
        from_short[9].startswith(b"HTTP/1.0 200 OK\r\n") and b"Connection: close" in from_short[9]
    )
    # Each server stored its fixes once: 7 each (ts, ts+1, OwnTracks, chunked, HEAD, close, 1.0).
    engine = create_engine(database_url)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*), count(DISTINCT ts) FROM positions WHERE device_id = :d"),
            {"d": phone.device_id},
        ).one()
    engine.dispose()
    assert tuple(stored) == (14, 14)
