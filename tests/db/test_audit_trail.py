"""The audit trail: every read of someone's whereabouts leaves one row; rows cannot be changed."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from tracker import audit, store
from tracker.extensions import db
from tracker.models import AuditEvent


def login(app, make_user, role="admin", unit_id=None):
    """Return a test client logged in as a new staff account, and its user name."""
    client = app.test_client()
    username, password = make_user(role, unit_id)
    response = client.post("/api/v1/session", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return client, username


def rows_since(app, last_id: int) -> list[AuditEvent]:
    """Return the audit rows added after id last_id, oldest first."""
    with app.app_context():
        rows = db.session.execute(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id)
        )
        return list(rows.scalars())


def last_id(app) -> int:
    """Return the newest audit row's id (0 when there is none)."""
    with app.app_context():
        return db.session.execute(select(func.coalesce(func.max(AuditEvent.id), 0))).scalar()


def add_fixes(app, phone, count=3):
    """Store some fixes of a phone over the last hour; return their times."""
    now = datetime.now(UTC).replace(microsecond=0)
    times = [now - timedelta(minutes=10 * n) for n in range(count)]
    with app.app_context():
        for ts in times:
            store.positions.ensure_partition(db.session, ts.date())
        store.positions.insert_positions(
            db.session,
            [
                store.positions.PositionRow(phone.person_id, phone.device_id, ts, 39.9, 116.4)
                for ts in times
            ],
        )
        db.session.commit()
    return times


WINDOW = {
    "from": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
    "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
}


@pytest.mark.parametrize(
    ("path", "action", "target_kind"),
    [
        ("/api/v1/people/{pid}/track", "track.read", "person"),
        ("/api/v1/people/{pid}/track.gpx", "track.export_gpx", "person"),
        ("/api/v1/people/{pid}/track.csv", "track.export_csv", "person"),
        ("/api/v1/people/{pid}/timeline", "timeline.read", "person"),
        ("/api/v1/replay", "replay.read", "unit"),
        ("/api/v1/near", "near.read", "place"),
    ],
)
def test_each_read_adds_exactly_one_row(
    app, make_user, make_phone, make_unit, path, action, target_kind
):
    unit_id = make_unit()
    phone = make_phone(unit_id=unit_id)
    add_fixes(app, phone)
    client, username = login(app, make_user)
    before = last_id(app)
    url = path.format(pid=phone.person_id)
    extra = {"unit_id": unit_id, "lat": 39.9, "lon": 116.4, "radius_m": 100}
    response = client.get(url, query_string={**WINDOW, **extra})
    assert response.status_code == 200, response.get_data(as_text=True)
    (row,) = rows_since(app, before)
    assert (row.action, row.actor_name, row.target_kind) == (action, username, target_kind)
    expected_target = {"person": phone.person_id, "unit": unit_id, "place": None}[target_kind]
    assert row.target_id == expected_target
    assert row.address == "127.0.0.1"
    assert row.after["from"] == datetime.fromisoformat(WINDOW["from"]).isoformat()
    if target_kind == "place":
        # Who was found near the place is named, so a search by person finds the query.
        assert phone.person_id in row.after["person_ids"]


def test_running_a_report_adds_exactly_one_row(app, make_user, make_phone, make_unit):
    unit_id = make_unit()
    phone = make_phone(unit_id=unit_id)
    add_fixes(app, phone)
    client, username = login(app, make_user)
    before = last_id(app)
    day = datetime.now(UTC).date().isoformat()
    response = client.get(f"/api/v1/reports/person-days?unit_id={unit_id}&from={day}&to={day}")
    assert response.status_code == 200, response.get_data(as_text=True)
    (row,) = rows_since(app, before)
    assert (row.action, row.actor_name, row.target_kind, row.target_id) == (
        "report.person_days",
        username,
        "unit",
        unit_id,
    )
    assert (row.after["from"], row.after["to"]) == (day, day)


def test_replay_names_each_person_it_showed(app, make_user, make_phone, make_unit):
    unit_id = make_unit()
    phones = [make_phone(unit_id=unit_id) for _ in range(2)]
    for phone in phones:
        add_fixes(app, phone, 2)
    client, _ = login(app, make_user)
    client.get("/api/v1/replay", query_string={**WINDOW, "unit_id": unit_id})
    trail = client.get(f"/api/v1/audit?person_id={phones[1].person_id}").get_json()["events"]
    assert [e["action"] for e in trail] == ["replay.read"]
    assert trail[0]["target_id"] == unit_id


def test_a_refused_read_leaves_no_row(app, make_user, make_phone, make_unit):
    other_unit, own_unit = make_unit(), make_unit()
    phone = make_phone(unit_id=other_unit)
    client, _ = login(app, make_user, "dispatcher", own_unit)
    before = last_id(app)
    assert client.get(f"/api/v1/people/{phone.person_id}/track").status_code == 404
    assert rows_since(app, before) == []


def test_record_read_outside_a_request_names_the_cli(app):
    before = last_id(app)
    with app.app_context():
        audit.record_read("report.person_days", "unit", 7, {"from": "2026-01-01"})
    (row,) = rows_since(app, before)
    assert row.actor_name.startswith("cli:") and row.actor_id is None
    assert (row.action, row.target_kind, row.target_id) == ("report.person_days", "unit", 7)
    assert row.after == {"from": "2026-01-01"}


def test_logins_failed_logins_and_logouts_are_recorded(app, make_user):
    username, password = make_user("viewer")
    client = app.test_client()
    before = last_id(app)
    wrong = client.post("/api/v1/session", json={"username": username, "password": "nope"})
    assert wrong.status_code == 401
    assert (
        client.post(
            "/api/v1/session", json={"username": username, "password": password}
        ).status_code
        == 200
    )
    assert client.delete("/api/v1/session").status_code == 204
    rows = rows_since(app, before)
    assert [(r.action, r.actor_name) for r in rows] == [
        ("session.login_failed", username),
        ("session.login", username),
        ("session.logout", username),
    ]
    assert rows[0].target_id == rows[1].target_id == rows[1].actor_id


def test_a_viewer_and_a_dispatcher_cannot_read_the_trail(app, make_user):
    for role in ("viewer", "dispatcher"):
        client, _ = login(app, make_user, role)
        assert client.get("/api/v1/audit").status_code == 403
        assert client.get("/api/v1/audit.csv").status_code == 403


def test_search_by_person_actor_action_and_date(app, make_user, make_phone):
    phone, other = make_phone(), make_phone()
    reader, reader_name = login(app, make_user)
    reader.get(f"/api/v1/people/{phone.person_id}/track")
    reader.get(f"/api/v1/people/{phone.person_id}/track.gpx")
    reader.get(f"/api/v1/people/{other.person_id}/track")
    admin, _ = login(app, make_user)

    def actions(**params):
        body = admin.get("/api/v1/audit", query_string=params).get_json()
        return [(e["action"], e["target_id"]) for e in body["events"]]

    assert actions(person_id=phone.person_id) == [
        ("track.export_gpx", phone.person_id),
        ("track.read", phone.person_id),
    ]
    assert actions(actor=reader_name, action="track.read") == [
        ("track.read", other.person_id),
        ("track.read", phone.person_id),
    ]
    assert actions(actor=reader_name, action="track.") == [
        ("track.read", other.person_id),
        ("track.export_gpx", phone.person_id),
        ("track.read", phone.person_id),
    ]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert actions(actor=reader_name, **{"from": future}) == []
    bad = admin.get("/api/v1/audit?person_id=x")
    assert bad.status_code == 400 and bad.get_json()["error"].startswith("person_id:")
    bad = admin.get("/api/v1/audit?from=yesterday")
    assert bad.status_code == 400 and bad.get_json()["error"].startswith("from:")


def test_pages_and_csv_export(app, make_user, make_phone):
    phone = make_phone()
    reader, reader_name = login(app, make_user)
    for _ in range(3):
        reader.get(f"/api/v1/people/{phone.person_id}/track")
    admin, admin_name = login(app, make_user)
    first = admin.get(f"/api/v1/audit?actor={reader_name}&limit=2").get_json()
    assert len(first["events"]) == 2 and first["next_before_id"] is not None
    second = admin.get(
        f"/api/v1/audit?actor={reader_name}&limit=2&before_id={first['next_before_id']}"
    ).get_json()
    assert [e["action"] for e in second["events"]] == ["track.read", "session.login"]
    assert second["next_before_id"] is None
    response = admin.get(f"/api/v1/audit.csv?person_id={phone.person_id}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    # The export is recorded before it runs, so it lists itself first.
    assert [(r["action"], r["actor_name"]) for r in table] == [
        ("audit.export_csv", admin_name),
        *[("track.read", reader_name)] * 3,
    ]
    # Searching the trail about a person is itself a look at them.
    mine = admin.get(f"/api/v1/audit?actor={admin_name}").get_json()["events"]
    assert [e["action"] for e in mine][:2] == ["audit.export_csv", "audit.read"]
    assert mine[0]["target_id"] == phone.person_id


def test_an_admin_of_a_unit_sees_only_rows_about_their_scope(app, make_user, make_phone, make_unit):
    unit_a, unit_b = make_unit(), make_unit()
    in_a, in_b = make_phone(unit_id=unit_a), make_phone(unit_id=unit_b)
    reader, _ = login(app, make_user)
    reader.get(f"/api/v1/people/{in_a.person_id}/track")
    reader.get(f"/api/v1/people/{in_b.person_id}/track")
    admin_a, _ = login(app, make_user, "admin", unit_a)
    assert [
        e["target_id"]
        for e in admin_a.get("/api/v1/audit?action=track.read").get_json()["events"]
        if e["target_id"] in (in_a.person_id, in_b.person_id)
    ] == [in_a.person_id]


# --- append-only -------------------------------------------------------------------------


def test_the_apps_role_cannot_update_delete_or_truncate(app):
    with app.app_context():
        audit.record_read("track.read", "person", 1)
        for statement in (
            "UPDATE audit_events SET actor_name = 'someone else'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
        ):
            with db.engine.connect() as conn, pytest.raises(DBAPIError) as refused:
                conn.execute(text(statement))
            assert "append-only" in str(refused.value)
        assert store.audit.count_events(db.session) > 0


def test_a_do_block_cannot_pass_for_the_pruning_function(app):
    with app.app_context(), db.engine.connect() as conn, pytest.raises(DBAPIError) as refused:
        conn.execute(
            text(
                "DO $$ BEGIN PERFORM 'function audit_prune(timestamp with time zone)';"
                " DELETE FROM audit_events; END $$"
            )
        )
    assert "append-only" in str(refused.value)


@pytest.fixture()
def restricted_role(app, database_url):
    """Return an engine logged in as a role with every table privilege, but owning nothing."""
    role = f"tracker_app_{uuid.uuid4().hex[:8]}"
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON audit_events TO "{role}"'))
        conn.execute(text(f'GRANT USAGE ON SEQUENCE audit_events_id_seq TO "{role}"'))
    from sqlalchemy.engine import make_url

    engine = create_engine(make_url(database_url).set(username=role))
    yield engine
    engine.dispose()
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text(f'DROP OWNED BY "{role}"'))
        conn.execute(text(f'DROP ROLE "{role}"'))


def test_a_role_with_every_privilege_still_cannot_change_rows(restricted_role):
    with restricted_role.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_events (actor_name, action, target_kind)"
                " VALUES ('x', 'track.read', 'person')"
            )
        )
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
        with restricted_role.connect() as conn, pytest.raises(DBAPIError) as refused:
            conn.execute(text(statement))
        assert "append-only" in str(refused.value)
    # Nor may it call the pruning function, which only the owner's code is granted.
    with restricted_role.connect() as conn, pytest.raises(ProgrammingError):
        conn.execute(text("SELECT audit_prune(now())"))


def test_the_pieces_of_one_replay_range_add_one_row(app, make_user, make_phone, make_unit):
    unit_id = make_unit()
    add_fixes(app, make_phone(unit_id=unit_id), 3)
    client, _ = login(app, make_user)
    whole_from, whole_to = datetime.now(UTC) - timedelta(hours=2), datetime.now(UTC)
    whole = {"range_from": whole_from.isoformat(), "range_to": whole_to.isoformat()}
    before = last_id(app)
    # The page's two pieces of the range, and the first again at a finer thinning (a zoom).
    middle = whole_from + timedelta(hours=1)
    for start, end, step in (
        (middle, whole_to, 30),
        (whole_from, middle, 30),
        (middle, whole_to, 5),
    ):
        query = {"from": start.isoformat(), "to": end.isoformat(), "step_s": step, **whole}
        response = client.get("/api/v1/replay", query_string={**query, "unit_id": unit_id})
        assert response.status_code == 200, response.get_json()
    rows = rows_since(app, before)
    assert [r.action for r in rows] == ["replay.read"]
    assert (rows[0].after["from"], rows[0].after["to"]) == (
        whole_from.isoformat(),
        whole_to.isoformat(),
    )
    # A piece outside the range it names is refused: the row must cover what was read.
    outside = {
        "from": (whole_to - timedelta(minutes=30)).isoformat(),
        "to": (whole_to + timedelta(minutes=30)).isoformat(),
        **whole,
        "unit_id": unit_id,
    }
    refused = client.get("/api/v1/replay", query_string=outside)
    assert refused.status_code == 400 and refused.get_json()["error"].startswith("range_from:")


def test_an_expired_login_is_ended_once_and_recorded(app, make_user, runner):
    used, unused = login(app, make_user), login(app, make_user)
    before = last_id(app)
    with app.app_context():
        # Both logins started longer ago than STAFF_SESSION_MAX_AGE_S.
        db.session.execute(
            text(
                "UPDATE staff_sessions SET created_at = now() - interval '2 days'"
                " FROM users WHERE users.id = staff_sessions.user_id"
                " AND users.username IN (:a, :b) AND ended_at IS NULL"
            ),
            {"a": used[1], "b": unused[1]},
        )
        db.session.commit()
    client, username = used
    assert client.get("/api/v1/session").status_code == 401
    assert client.get("/api/v1/session").status_code == 401  # ended once, not twice
    assert [(r.action, r.actor_name) for r in rows_since(app, before)] == [
        ("session.expired", username)
    ]
    # The login nobody used again is ended by the cron prune.
    result = runner.invoke(args=["partitions", "prune"])
    assert result.exit_code == 0, result.output
    expired = [r for r in rows_since(app, before) if r.action == "session.expired"]
    with app.app_context():
        ids = dict(db.session.execute(text("SELECT username, id FROM users")).all())
    # Each row targets the account whose login ended; the prune's actor is the terminal.
    assert [(r.target_kind, r.target_id) for r in expired] == [
        ("session", ids[username]),
        ("session", ids[unused[1]]),
    ]
    assert expired[1].actor_name.startswith("cli:")
