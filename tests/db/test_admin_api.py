"""The administration API (docs/admin-api.md) through the test client, against PostGIS."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tracker import store
from tracker.admin.devices import qr_svg
from tracker.extensions import db
from tracker.models import AuditEvent, Device, Person, Shift, StaffSession, User

from .test_api import login


def phone_number() -> str:
    """Return a phone number no other test uses."""
    return "139" + str(uuid.uuid4().int)[:8]


def audits(app, kind: str, target_id: int) -> list[AuditEvent]:
    """Return the audit rows of a target, oldest first."""
    with app.app_context():
        rows = db.session.execute(
            select(AuditEvent)
            .where(AuditEvent.target_kind == kind, AuditEvent.target_id == target_id)
            .order_by(AuditEvent.id)
        ).scalars()
        return [(r.action, r.before, r.after, r.actor_name) for r in rows]


def person_row(app, person_id: int) -> Person | None:
    """Return a person as stored."""
    with app.app_context():
        person = db.session.get(Person, person_id)
        if person is not None:
            db.session.expunge(person)
        return person


def people_count(app) -> int:
    """Return how many people are stored."""
    with app.app_context():
        return db.session.execute(select(func.count(Person.id))).scalar_one()


@pytest.fixture()
def street(make_unit):
    """Return (street, grid in it, other street, grid in that) unit ids."""
    district = make_unit(kind="district")
    a = make_unit(kind="street", parent_id=district)
    b = make_unit(kind="street", parent_id=district)
    return a, make_unit(kind="grid", parent_id=a), b, make_unit(kind="grid", parent_id=b)


def test_people_crud_is_stored_and_audited(app, client, make_user, street):
    street_a, grid_a, _, _ = street
    username, password = make_user("dispatcher", street_a)
    login(client, username, password)
    phone = phone_number()
    created = client.post(
        "/api/v1/people",
        json={
            "name": " 王芳 ",
            "role": "volunteer",
            "phone": phone,
            "unit_id": grid_a,
            "patrol_unit_id": grid_a,
        },
    )
    assert created.status_code == 201, created.json
    person = created.json
    assert person["name"] == "王芳" and person["unit_id"] == grid_a
    assert person["patrol_unit_id"] == grid_a and person["devices"] == 0
    stored = person_row(app, person["id"])
    assert (stored.name, stored.phone, stored.patrol_unit_id) == ("王芳", phone, grid_a)
    [(action, before, after, actor)] = audits(app, "person", person["id"])
    assert action == "person.create" and before is None and actor == username
    assert after["phone"] == phone and after["unit_id"] == grid_a

    listed = client.get(f"/api/v1/people?q={phone[-6:]}&unit_id={street_a}&active=true")
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json["people"]] == [person["id"]]
    assert listed.json["total"] == 1 and listed.json["per_page"] == 50

    changed = client.patch(f"/api/v1/people/{person['id']}", json={"role": "patrol"})
    assert changed.status_code == 200 and changed.json["role"] == "patrol"
    assert person_row(app, person["id"]).role == "patrol"
    assert audits(app, "person", person["id"])[-1][:3] == (
        "person.update",
        {"role": "volunteer"},
        {"role": "patrol"},
    )
    shown = client.get(f"/api/v1/people/{person['id']}")
    assert shown.status_code == 200 and shown.json["devices"] == []


def test_duplicate_phone_is_409_and_not_stored(app, client, make_user, street):
    username, password = make_user("admin")
    login(client, username, password)
    phone = phone_number()
    first = client.post("/api/v1/people", json={"name": "a", "role": "volunteer", "phone": phone})
    assert first.status_code == 201
    before = people_count(app)
    spaced = f"{phone[:3]} {phone[3:7]}-{phone[7:]}"
    again = client.post("/api/v1/people", json={"name": "b", "role": "volunteer", "phone": spaced})
    assert again.status_code == 409
    assert again.json["error"] == f"phone: {spaced} belongs to person {first.json['id']}"
    assert people_count(app) == before


def test_deactivating_refuses_phones_and_ends_shift(app, client, make_user, make_phone):
    phone = make_phone()
    with app.app_context():
        store.people.open_shift(db.session, phone.person_id)
        db.session.commit()
    login(client, *make_user("admin"))
    answer = client.patch(f"/api/v1/people/{phone.person_id}", json={"active": False})
    assert answer.status_code == 200 and answer.json["active"] is False
    assert answer.json["on_duty"] is False
    with app.app_context():
        assert (
            db.session.execute(
                select(Shift.end_reason).where(Shift.person_id == phone.person_id)
            ).scalar_one()
            == "deactivated"
        )
    assert audits(app, "person", phone.person_id)[-1][0] == "person.deactivate"
    refused = client.post(
        "/api/v1/positions",
        json={"positions": [{"lat": 39.9, "lon": 116.4}]},
        headers={"Authorization": f"Bearer {phone.token}"},
    )
    assert refused.status_code in (401, 403)


def test_issue_device_token_works_and_revoke_stops_it(app, client, make_user, make_phone):
    target = make_phone()
    login(client, *make_user("dispatcher"))
    issued = client.post(f"/api/v1/people/{target.person_id}/devices", json={"label": "Redmi 12"})
    assert issued.status_code == 201, issued.json
    body = issued.json
    token = body["token"]
    base = app.config["PUBLIC_URL"]
    assert body["pairing_url"] == f"{base}/m#token={token}"
    assert body["setup"] == {
        "server_url": base,
        "device_id": token,
        "osmand_url": f"{base}/osmand",
        "owntracks_url": f"{base}/owntracks/{token}",
    }
    assert ET.fromstring(body["qr_svg"]).tag.endswith("svg")
    with app.app_context():
        assert body["qr_svg"] == qr_svg(body["pairing_url"])
        stored = db.session.get(Device, body["id"])
        assert stored.label == "Redmi 12" and token not in stored.token_hash
    [(action, _, after, _)] = audits(app, "device", body["id"])
    assert action == "device.issue" and token not in str(after)

    listed = client.get(f"/api/v1/people/{target.person_id}/devices").json["devices"]
    assert body["id"] in [d["id"] for d in listed] and all("token" not in d for d in listed)

    fix = {"positions": [{"lat": 39.9, "lon": 116.4}]}
    auth = {"Authorization": f"Bearer {token}"}
    app.test_client().post("/api/v1/positions", json=fix, headers=auth)  # warm the lookup
    accepted = app.test_client().post("/api/v1/positions", json=fix, headers=auth)
    assert accepted.status_code in (200, 202), accepted.data

    revoked = client.post(f"/api/v1/devices/{body['id']}/revoke", json={})
    assert revoked.status_code == 200 and revoked.json["revoked_at"] is not None
    assert audits(app, "device", body["id"])[-1][0] == "device.revoke"
    from tracker.ingest.service import token_lookups

    token_lookups.clear() if hasattr(token_lookups, "clear") else None
    refused = app.test_client().post("/api/v1/positions", json=fix, headers=auth)
    assert refused.status_code in (401, 403), refused.data


def test_street_admin_cannot_reach_another_street(app, client, make_user, make_phone, street):
    street_a, grid_a, street_b, grid_b = street
    other = make_phone(unit_id=grid_b)
    staff_b = make_user("viewer", street_b)
    with app.app_context():
        staff_b_id = store.accounts.user_by_username(db.session, staff_b[0]).id
    login(client, *make_user("admin", street_a))
    assert client.get(f"/api/v1/people/{other.person_id}").status_code == 404
    assert other.person_id not in [p["id"] for p in client.get("/api/v1/people").json["people"]]
    assert client.patch(f"/api/v1/people/{other.person_id}", json={"name": "x"}).status_code == 404
    assert client.get(f"/api/v1/people/{other.person_id}/devices").status_code == 404
    assert client.post(f"/api/v1/people/{other.person_id}/devices", json={}).status_code == 404
    assert client.post(f"/api/v1/devices/{other.device_id}/revoke", json={}).status_code == 404
    outside = client.post(
        "/api/v1/people", json={"name": "x", "role": "volunteer", "unit_id": grid_b}
    )
    assert outside.status_code == 403
    assert outside.json["error"] == f"unit_id: unit {grid_b} is outside your scope"
    assert client.post("/api/v1/people", json={"name": "x", "role": "volunteer"}).status_code == 400
    assert staff_b_id not in [u["id"] for u in client.get("/api/v1/users").json["users"]]
    assert client.patch(f"/api/v1/users/{staff_b_id}", json={"active": False}).status_code == 404
    made = client.post(
        "/api/v1/users",
        json={
            "username": f"x{uuid.uuid4().hex[:8]}",
            "password": "p" * 8,
            "role": "viewer",
            "unit_id": grid_b,
        },
    )
    assert made.status_code == 403
    assert person_row(app, other.person_id).name.startswith("p-")
    with app.app_context():
        assert db.session.get(Device, other.device_id).revoked_at is None
        assert db.session.get(User, staff_b_id).active is True


def test_dispatcher_cannot_manage_staff_and_viewer_changes_nothing(client, make_user, make_phone):
    target = make_phone()
    login(client, *make_user("dispatcher"))
    assert client.get("/api/v1/users").status_code == 403
    body = {"username": "new", "password": "p" * 8, "role": "viewer"}
    assert client.post("/api/v1/users", json=body).status_code == 403
    client.delete("/api/v1/session")
    login(client, *make_user("viewer"))
    assert client.get(f"/api/v1/people/{target.person_id}").status_code == 200
    for method, path, json in [
        ("post", "/api/v1/people", {"name": "x", "role": "volunteer"}),
        ("patch", f"/api/v1/people/{target.person_id}", {"name": "x"}),
        ("post", f"/api/v1/people/{target.person_id}/devices", {}),
        ("post", f"/api/v1/devices/{target.device_id}/revoke", {}),
        ("post", "/api/v1/roster/devices", {"person_ids": [target.person_id]}),
        ("post", "/api/v1/users", body),
    ]:
        assert getattr(client, method)(path, json=json).status_code == 403, path


def test_staff_accounts_crud_ends_sessions_and_audits(app, client, make_user, street):
    street_a, grid_a, _, _ = street
    login(client, *make_user("admin", street_a))
    name = f"s{uuid.uuid4().hex[:8]}"
    made = client.post(
        "/api/v1/users",
        json={"username": name, "password": "secret-pass", "role": "viewer", "unit_id": grid_a},
    )
    assert made.status_code == 201, made.json
    user = made.json
    assert (user["username"], user["unit_id"], user["open_sessions"]) == (name, grid_a, 0)
    taken = client.post(
        "/api/v1/users",
        json={"username": name, "password": "secret-pass", "role": "viewer", "unit_id": grid_a},
    )
    assert taken.status_code == 409
    other = app.test_client()
    assert login(other, name, "secret-pass").status_code == 200
    assert other.get("/api/v1/session").status_code == 200
    changed = client.patch(f"/api/v1/users/{user['id']}", json={"password": "another-pass"})
    assert changed.status_code == 200 and changed.json["open_sessions"] == 0
    assert other.get("/api/v1/session").status_code == 401
    assert login(other, name, "another-pass").status_code == 200
    disabled = client.patch(f"/api/v1/users/{user['id']}", json={"active": False})
    assert disabled.status_code == 200 and disabled.json["active"] is False
    assert other.get("/api/v1/session").status_code == 401
    with app.app_context():
        assert (
            db.session.execute(
                select(func.count(StaffSession.id)).where(
                    StaffSession.user_id == user["id"], StaffSession.ended_at.is_(None)
                )
            ).scalar_one()
            == 0
        )
        assert "another-pass" not in db.session.get(User, user["id"]).password_hash
    actions = [a[0] for a in audits(app, "user", user["id"])]
    assert actions == ["user.create", "user.update", "user.update"]
    assert all(
        "pass" not in str(a[2]).replace("password_changed", "")
        for a in audits(app, "user", user["id"])
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/api/v1/people", {"name": "", "role": "volunteer"}, "name"),
        ("post", "/api/v1/people", {"name": "x" * 101, "role": "volunteer"}, "name"),
        ("post", "/api/v1/people", {"name": "x", "role": "boss"}, "role"),
        ("post", "/api/v1/people", {"name": "x", "role": "volunteer", "phone": "abc"}, "phone"),
        ("post", "/api/v1/people", {"name": "x", "role": "volunteer", "unit_id": "4"}, "unit_id"),
        ("post", "/api/v1/people", {"name": "x", "role": "volunteer", "unit_id": 2**30}, "unit_id"),
        ("post", "/api/v1/people", {"name": "x", "role": "volunteer", "colour": 1}, "colour"),
        ("post", "/api/v1/people", {"role": "volunteer"}, "name"),
        ("post", "/api/v1/people", ["x"], "body"),
        ("patch", "/api/v1/people/{person}", {"active": "no"}, "active"),
        ("patch", "/api/v1/people/{person}", {"patrol_unit_id": "{street}"}, "patrol_unit_id"),
        ("post", "/api/v1/people/{person}/devices", {"label": ""}, "label"),
        ("post", "/api/v1/people/{person}/devices", {"label": "track import"}, "label"),
        (
            "post",
            "/api/v1/users",
            {"username": "a b", "password": "p" * 8, "role": "viewer"},
            "username",
        ),
        (
            "post",
            "/api/v1/users",
            {"username": "ab", "password": "short", "role": "viewer"},
            "password",
        ),
        ("post", "/api/v1/users", {"username": "ab", "password": "p" * 8, "role": "boss"}, "role"),
        ("post", "/api/v1/roster/devices", {"person_ids": []}, "person_ids"),
        ("post", "/api/v1/roster/devices", {"person_ids": ["1"]}, "person_ids"),
        ("post", "/api/v1/roster/preview", {"file_base64": "%%%"}, "file"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    app, client, make_user, make_phone, make_unit, method, path, body, field
):
    target = make_phone()
    street_id = make_unit(kind="street")
    login(client, *make_user("admin"))
    path = path.format(person=target.person_id)
    if isinstance(body, dict) and body.get("patrol_unit_id") == "{street}":
        body = {"patrol_unit_id": street_id}
    before = people_count(app)
    with app.app_context():
        audit_rows = db.session.execute(select(func.count(AuditEvent.id))).scalar_one()
    answer = getattr(client, method)(path, json=body)
    assert answer.status_code == 400, answer.json
    assert answer.json["error"].startswith(f"{field}: "), answer.json
    assert answer.json["message"]
    assert people_count(app) == before
    with app.app_context():
        assert db.session.execute(select(func.count(AuditEvent.id))).scalar_one() == audit_rows


def test_errors_are_localized(client, make_user):
    login(client, *make_user("admin"))
    answer = client.post(
        "/api/v1/people",
        json={"name": " ", "role": "volunteer"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert answer.status_code == 400
    assert answer.json["error"] == "name: must not be empty"
    assert answer.json["message"] == "name：不能为空"


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.text(max_size=120),
    st.lists(st.integers(), max_size=2),
    st.floats(allow_nan=True),
)
bodies = st.dictionaries(
    st.sampled_from(["name", "role", "phone", "unit_id", "patrol_unit_id", "active", "x"]),
    values,
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, patch=st.booleans())
def test_fuzzed_people_bodies_never_5xx_nor_half_store(app, make_user, make_phone, body, patch):
    client = app.test_client()
    login(client, *make_user("admin"))
    target = make_phone()
    before_person = person_row(app, target.person_id)
    before = people_count(app)
    if patch:
        answer = client.patch(f"/api/v1/people/{target.person_id}", json=body)
    else:
        answer = client.post("/api/v1/people", json=body)
    assert answer.status_code < 500, answer.data
    if answer.status_code >= 400:
        assert people_count(app) == before
        after_person = person_row(app, target.person_id)
        assert (after_person.name, after_person.role, after_person.phone, after_person.active) == (
            before_person.name,
            before_person.role,
            before_person.phone,
            before_person.active,
        )
        assert audits(app, "person", target.person_id) == []
