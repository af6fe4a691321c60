"""Pairing: `devices issue` prints a link and a QR code; the web app is installable."""

from __future__ import annotations

import struct
import zlib

from tracker import store
from tracker.auth import hash_token
from tracker.extensions import db


def test_issue_prints_pairing_link_and_qr_code_with_the_token_last(app, runner, make_phone):
    person_id = make_phone().person_id
    app.config["PUBLIC_URL"] = "https://tracker.example.org"
    try:
        result = runner.invoke(args=["devices", "issue", str(person_id), "--label", "Redmi"])
    finally:
        app.config["PUBLIC_URL"] = "http://127.0.0.1:5000"
    assert result.exit_code == 0, result.output
    lines = result.output.rstrip("\n").split("\n")
    token = lines[-1]
    assert f"https://tracker.example.org/m#token={token}" in lines
    qr_rows = [line for line in lines if "█" in line or "▀" in line or "▄" in line]
    assert len(qr_rows) >= 10, "a QR code is drawn in the terminal"
    with app.app_context():
        device = store.devices.device_by_token_hash(db.session, hash_token(token))
        db.session.remove()
    assert device is not None and device.person_id == person_id


def test_manifest_service_worker_and_icons(client):
    page = client.get("/m")
    assert page.status_code == 200
    assert b'rel="manifest"' in page.data and b"/static/vendor/socket.io.min.js" in page.data

    manifest = client.get("/m/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json"
    assert manifest.json["start_url"] == "/m" and manifest.json["display"] == "standalone"
    sizes = {icon["sizes"] for icon in manifest.json["icons"]}
    assert {"192x192", "512x512"} <= sizes

    worker = client.get("/m/sw.js")
    assert worker.headers["Service-Worker-Allowed"] == "/m"
    assert b'"/static/vendor/socket.io.min.js"' in worker.data

    for size in (192, 512):
        png = client.get(f"/m/icon-{size}.png").data
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert (width, height) == (size, size)
        # The drawing is white on green: both colours are in the pixels.
        raw = zlib.decompress(png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8])
        assert b"\xff\xff\xff" in raw and b"\x0b\x5d\x4b" in raw
    assert client.get("/m/icon-100.png").status_code == 404


def test_task_hook_is_off_unless_enabled(client):
    assert client.post("/m/_test/task", json={"device_id": 1, "task": {}}).status_code == 404
