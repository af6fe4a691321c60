"""Reports from phones (事件上报) with photos, on the real server, checked in PostGIS."""

from __future__ import annotations

import hashlib
import io
import json
import random
import threading
import uuid

import pytest
import requests
from PIL import ExifTags, Image
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, ServerProcess
from tests.e2e.phones import now_ms
from tests.e2e.staff import live_viewer, staff_session, wait_for
from tracker import media
from tracker.config import Config
from tracker.dispatch.categories import DEFAULT_CATEGORIES

PHOTO_DIR = ROOT / "var" / "photos"  # the server fixture's PHOTO_DIR (the default)
UNKNOWN_TOKEN = {"ok": False, "error": "auth.token: unknown or revoked device token"}


@pytest.fixture(scope="module")
def engine(database_url):
    """Return an engine on the test database."""
    eng = create_engine(database_url)
    yield eng
    eng.dispose()


def picture(fmt: str = "JPEG", size: tuple[int, int] = (160, 120), gps: bool = False) -> bytes:
    """Return a picture of random colour (so its file is new), with GPS in EXIF if asked."""
    rng = random.Random(uuid.uuid4().int)
    colour = tuple(rng.randrange(256) for _ in range(3))
    image = Image.new("RGB", size, colour)
    options = {}
    if gps:
        exif = Image.Exif()
        exif[ExifTags.Base.Model] = "Pixel 9 Pro"
        exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] = (39.0, 55.0, 12.0)
        options["exif"] = exif
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def report(key: str | None = None, **fields) -> dict:
    """Return a valid `report` object, changed by `fields`."""
    body = {
        "key": key or str(uuid.uuid4()),
        "category": "sanitation",
        "note": "垃圾堆放，占用人行道",
        "lat": 39.9312,
        "lon": 116.4123,
        "ts": now_ms(),
    }
    return {**body, **fields}


def send(server, token: str, body, photos: list[bytes], report_as_text: bool = True):
    """POST a multipart report as the phone app does; return the response."""
    files = [("photo", (f"IMG_{n}.jpg", data, "image/jpeg")) for n, data in enumerate(photos)]
    encoded = body if isinstance(body, str) else json.dumps(body)
    data = {}
    if report_as_text:
        data["report"] = encoded
    else:  # a Blob appended to FormData arrives as a file part
        files.append(("report", ("blob", encoded.encode(), "application/json")))
    return requests.post(
        f"{server.url}/api/v1/reports",
        headers={"Authorization": f"Bearer {token}"},
        data=data,
        files=files,
        timeout=30,
    )


def reported(engine, person_id: int) -> list:
    """Return the incidents a person reported, with their point and photo count."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT i.id, i.status, i.category, i.description, i.unit_id, i.report_key, "
                "ST_Y(i.geom) AS lat, ST_X(i.geom) AS lon, "
                "(SELECT count(*) FROM incident_photos p WHERE p.incident_id = i.id) AS photos "
                "FROM incidents i WHERE i.reported_by = :p ORDER BY i.id"
            ),
            {"p": person_id},
        ).all()


def photo_rows(engine, incident_id: int) -> list:
    """Return an incident's photo rows in id order."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT id, sha256, content_type, bytes, width, height FROM incident_photos "
                "WHERE incident_id = :i ORDER BY id"
            ),
            {"i": incident_id},
        ).all()


def test_a_report_with_two_photos_is_stored_once_and_shown_to_its_unit(
    server, make_unit, make_phone, make_user, engine
):
    street = make_unit(kind="street")
    grid = make_unit(parent_id=street)
    phone = make_phone("grid_worker", unit_id=grid)
    dispatcher = staff_session(server, make_user, "dispatcher", street)  # the unit above the grid
    viewer, received = live_viewer(server, dispatcher)
    pushed = received["incident"]
    body = report(lat=39.9312, lon=116.4123)
    photos = [picture("JPEG", gps=True), picture("PNG", size=(90, 200))]

    first = send(server, phone.token, body, photos)
    again = send(server, phone.token, body, photos)  # the answer was lost: the phone resends

    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer == {"ok": True, "incident_id": answer["incident_id"], "duplicate": False,
                      "photos": 2}  # fmt: skip
    assert again.status_code == 200
    assert again.json() == {**answer, "duplicate": True}
    (incident,) = reported(engine, phone.person_id)
    assert incident.id == answer["incident_id"]
    assert (incident.status, incident.category, incident.description) == (
        "open",
        "sanitation",
        "垃圾堆放，占用人行道",
    )
    assert (incident.unit_id, incident.report_key, incident.photos) == (grid, body["key"], 2)
    assert (incident.lat, incident.lon) == pytest.approx((39.9312, 116.4123), abs=1e-9)
    with engine.connect() as conn:
        events = conn.execute(
            text("SELECT kind, person_id FROM incident_events WHERE incident_id = :i"),
            {"i": incident.id},
        ).all()
    assert [tuple(e) for e in events] == [("reported", phone.person_id)]

    # The dispatcher of the street sees it live, once, and can open it.
    assert wait_for(lambda: [i for i in pushed if i["id"] == incident.id], 10.0)
    assert [i["id"] for i in pushed].count(incident.id) == 1
    viewer.disconnect()
    detail = dispatcher.get(f"{server.url}/api/v1/incidents/{incident.id}", timeout=10)
    assert detail.status_code == 200
    assert detail.json()["id"] == incident.id

    rows = photo_rows(engine, incident.id)
    assert [(r.content_type, r.width, r.height) for r in rows] == [
        ("image/jpeg", 160, 120),
        ("image/png", 90, 200),
    ]
    if "photos" in detail.json():
        assert [p["id"] for p in detail.json()["photos"]] == [r.id for r in rows]
    for row in rows:
        got = dispatcher.get(
            f"{server.url}/api/v1/incidents/{incident.id}/photos/{row.id}", timeout=10
        )
        assert got.status_code == 200
        assert got.headers["Content-Type"] == row.content_type
        assert got.headers["Cache-Control"].startswith("private")
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert hashlib.sha256(got.content).hexdigest() == row.sha256
        assert len(got.content) == row.bytes
        served = Image.open(io.BytesIO(got.content))
        assert served.size == (row.width, row.height)
        assert dict(served.getexif()) == {}  # the GPS position and the phone model are gone
        assert b"Pixel 9 Pro" not in got.content
        assert (PHOTO_DIR / row.sha256[:2] / row.sha256).read_bytes() == got.content
        cached = dispatcher.get(got.url, headers={"If-None-Match": got.headers["ETag"]}, timeout=10)
        assert cached.status_code == 304


def test_photos_outside_the_accounts_units_are_refused(
    server, make_unit, make_phone, make_user, engine
):
    grid = make_unit()
    elsewhere = make_unit()
    phone = make_phone("volunteer", unit_id=grid)
    answer = send(server, phone.token, report(), [picture("WEBP")]).json()
    (row,) = photo_rows(engine, answer["incident_id"])
    url = f"{server.url}/api/v1/incidents/{answer['incident_id']}/photos/{row.id}"

    for role in ("viewer", "dispatcher"):
        outside = staff_session(server, make_user, role, elsewhere).get(url, timeout=10)
        assert outside.status_code == 403, role
        assert outside.json() == {"error": "incident: outside your units"}
        inside = staff_session(server, make_user, role, grid).get(url, timeout=10)
        assert inside.status_code == 200, role
        assert inside.headers["Content-Type"] == "image/webp"

    admin = staff_session(server, make_user, "admin", None)
    unknown = admin.get(f"{url[: url.rindex('/')]}/{row.id + 100000}", timeout=10)
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "photo: not found"}
    assert requests.get(url, timeout=10).status_code == 401  # no staff login
    with_token = requests.get(url, headers={"Authorization": f"Bearer {phone.token}"}, timeout=10)
    assert with_token.status_code == 401  # a device token is not a staff login


def test_a_non_image_is_refused_naming_the_photo_and_nothing_is_stored(
    server, make_phone, make_unit, engine
):
    phone = make_phone("grid_worker", unit_id=make_unit())
    good = picture("JPEG")
    good_sha = hashlib.sha256(media.checked_photo(good, 10**7, 10**8).data).hexdigest()
    renamed_text = "这不是照片 — just a text file named IMG_1.jpg\n".encode() * 20

    response = send(server, phone.token, report(), [good, renamed_text])

    assert response.status_code == 400
    assert response.json() == {"ok": False, "error": "photo[1]: not a JPEG, PNG or WebP image"}
    assert reported(engine, phone.person_id) == []
    assert not (PHOTO_DIR / good_sha[:2] / good_sha).exists()  # not even the good photo's file


def test_an_oversized_photo_is_refused(server, make_phone, make_unit, engine):
    phone = make_phone("grid_worker", unit_id=make_unit())
    cap = Config.PHOTO_MAX_BYTES
    too_large = b"\xff\xd8\xff" + random.randbytes(cap - 2)  # one byte over, JPEG magic

    response = send(server, phone.token, report(), [picture(), too_large])

    assert response.status_code == 400
    assert response.json() == {"ok": False, "error": f"photo[1]: larger than {cap} bytes"}
    assert reported(engine, phone.person_id) == []


def test_a_body_beyond_all_photos_allowed_is_a_413(database_url, make_phone, tmp_path, engine):
    # A server of its own with small photos, so that the test need not send 25 MB.
    small = ServerProcess(database_url, {"PHOTO_MAX_BYTES": "20000", "PHOTO_DIR": str(tmp_path)})
    small.start()
    try:
        phone = make_phone()
        cap = 5 * 20000 + 64 * 1024
        response = send(small, phone.token, report(), [b"x" * 19000] * 5 + [b"x" * 80000])
        assert response.status_code == 413
        assert response.json() == {"ok": False, "error": f"payload: larger than {cap} bytes"}
        fits = send(small, phone.token, report(), [picture()])
        assert fits.status_code == 200, fits.text
        (row,) = photo_rows(engine, fits.json()["incident_id"])
        assert (tmp_path / row.sha256[:2] / row.sha256).is_file()  # PHOTO_DIR is where they go
    finally:
        small.kill()  # what it stored is committed; a graceful stop waits for idle sockets
    assert [r.photos for r in reported(engine, phone.person_id)] == [1]


def test_too_many_pixels_are_refused(server, make_phone, make_unit, engine):
    phone = make_phone("grid_worker", unit_id=make_unit())
    # 8,000 × 6,000 of one colour: 48 megapixels in a small PNG.
    huge = io.BytesIO()
    Image.new("L", (8000, 6000), 128).save(huge, "PNG")

    response = send(server, phone.token, report(), [huge.getvalue()])

    assert response.status_code == 400
    assert response.json() == {
        "ok": False,
        "error": f"photo[0]: more than {Config.PHOTO_MAX_PIXELS} pixels",
    }
    assert reported(engine, phone.person_id) == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"key": "short"}, "report.key: must be 8 to 64 characters of A-Z a-z 0-9 - _"),
        ({"key": "has spaces in it"}, "report.key: must be 8 to 64 characters of A-Z a-z 0-9 - _"),
        (
            {"category": "graffiti"},
            "report.category: must be one of "
            "sanitation, street_vending, safety_hazard, damaged_facility, other",
        ),
        ({"note": "   "}, "report.note: must be a string of 1 to 2000 characters"),
        ({"note": "长" * 2001}, "report.note: must be a string of 1 to 2000 characters"),
        ({"lat": None}, "report.lat: must be a number, or lat and lon both null"),
        ({"lon": 181}, "report.lon: must be between -180 and 180"),
        ({"ts": "yesterday"}, "report.ts: not an ISO-8601 date-time"),
        ({"ts": "2026-12-01T08:00:00"}, "report.ts: must include a UTC offset (e.g. Z or +08:00)"),
    ],
)
def test_a_bad_report_field_is_named(server, make_phone, engine, change, error):
    phone = make_phone()
    response = send(server, phone.token, report(**change), [picture()])
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error": error}
    assert reported(engine, phone.person_id) == []


@pytest.mark.parametrize("count", [0, 6])
def test_one_to_five_photos_are_required(server, make_phone, engine, count):
    phone = make_phone()
    response = send(server, phone.token, report(), [picture() for _ in range(count)])
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error": "photo: one to five photos are required"}
    assert reported(engine, phone.person_id) == []


@pytest.mark.parametrize("body", ["not json", "[1, 2]", json.dumps(report())[:-1]])
def test_a_report_field_that_is_not_a_json_object_is_refused(server, make_phone, body):
    phone = make_phone()
    response = send(server, phone.token, body, [picture()])
    assert response.status_code == 400
    assert response.json()["error"].startswith("report: must be a JSON object")


def test_the_report_may_come_as_a_json_blob_part(server, make_phone, make_unit, engine):
    phone = make_phone(unit_id=make_unit())
    response = send(server, phone.token, report(), [picture()], report_as_text=False)
    assert response.status_code == 200, response.text
    assert [r.photos for r in reported(engine, phone.person_id)] == [1]


def test_a_report_without_a_fix_is_placed_at_the_newest_stored_fix(
    server, make_phone, make_unit, engine
):
    phone = make_phone("patrol", unit_id=make_unit())
    no_fix = report(lat=None, lon=None)

    refused = send(server, phone.token, no_fix, [picture()])
    assert refused.status_code == 400
    assert refused.json() == {
        "ok": False,
        "error": "report.lat: a report needs a position: no fix from the phone and none stored",
    }
    stored = requests.post(
        f"{server.url}/api/v1/positions",
        headers={"Authorization": f"Bearer {phone.token}"},
        json={"positions": [{"ts": now_ms(), "lat": 39.9087, "lon": 116.3975, "accuracy": 8}]},
        timeout=10,
    )
    assert stored.json()["stored"] == 1

    accepted = send(server, phone.token, no_fix, [picture()])

    assert accepted.status_code == 200, accepted.text
    (incident,) = reported(engine, phone.person_id)
    assert (incident.lat, incident.lon) == pytest.approx((39.9087, 116.3975), abs=1e-9)


def test_two_identical_uploads_at_once_make_one_incident(server, make_phone, make_unit, engine):
    phone = make_phone(unit_id=make_unit())
    body, photos = report(), [picture(), picture("PNG")]
    answers: list = []
    start = threading.Barrier(4)

    def upload() -> None:
        start.wait()
        answers.append(send(server, phone.token, body, photos))

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [a.status_code for a in answers] == [200] * 4
    (incident,) = reported(engine, phone.person_id)
    assert incident.photos == 2
    assert {a.json()["incident_id"] for a in answers} == {incident.id}
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True]


def test_a_revoked_or_unknown_device_gets_401(server, make_phone, runner, engine):
    phone = make_phone()
    result = runner.invoke(args=["devices", "revoke", str(phone.device_id)])
    assert result.exit_code == 0, result.output

    for token in (phone.token, "not-a-token"):
        response = send(server, token, report(), [picture()])
        assert response.status_code == 401
        assert response.json() == UNKNOWN_TOKEN
    no_token = requests.post(f"{server.url}/api/v1/reports", files={"photo": b"x"}, timeout=10)
    assert no_token.status_code == 401
    assert reported(engine, phone.person_id) == []


def test_categories_for_phones_and_staff(server, make_phone, make_user, runner):
    phone = make_phone()
    url = f"{server.url}/api/v1/incident-categories"
    expected = [dict(c) for c in DEFAULT_CATEGORIES]

    by_phone = requests.get(url, headers={"Authorization": f"Bearer {phone.token}"}, timeout=10)
    assert by_phone.status_code == 200
    assert by_phone.json() == expected
    assert staff_session(server, make_user, "viewer", None).get(url, timeout=10).json() == expected
    assert requests.get(url, timeout=10).status_code == 401
    unknown = requests.get(url, headers={"Authorization": "Bearer not-a-token"}, timeout=10)
    assert unknown.status_code == 401
    assert unknown.json() == UNKNOWN_TOKEN


def test_a_phone_in_a_browser_logged_in_as_staff_can_still_report(
    server, make_phone, make_unit, make_user, engine
):
    """The staff cookie rides along with the phone's upload; the token decides, not it."""
    phone = make_phone(unit_id=make_unit())
    browser = staff_session(server, make_user, "dispatcher", None)
    files = [("photo", ("IMG_0.jpg", picture(), "image/jpeg"))]
    answer = browser.post(
        f"{server.url}/api/v1/reports",
        headers={"Authorization": f"Bearer {phone.token}"},
        data={"report": json.dumps(report())},
        files=files,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["duplicate"] is False
    assert len(reported(engine, phone.person_id)) == 1
