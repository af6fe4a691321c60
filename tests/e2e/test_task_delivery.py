"""Tasks reach phones exactly once: offline phones, restarts, cancel, reassign, alerts.

Real server processes, real Socket.IO phones and a real staff HTTP session; every claim is
checked against PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ServerProcess
from tests.e2e.phones import TestPhone, now_ms
from tests.e2e.staff import live_viewer, staff_session, wait_for

# Far from other tests' people, so that nearest-people lists are not crowded.
LAT, LON = -41.2865, 174.7762


@pytest.fixture(scope="module")
def loop_server(database_url):
    """A server that alerts about undelivered tasks after 1 s and checks every 0.3 s."""
    proc = ServerProcess(
        database_url, {"TASK_DELIVERY_ALERT_S": "1", "SIGNAL_CHECK_INTERVAL_S": "0.3"}
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def db(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def rows(db, sql, **params):
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


class RecordingPhone(TestPhone):
    """A phone that records `task` and `report_status` pushes."""

    def __init__(self, url, token):
        super().__init__(url, token)
        self.pushed: list[dict] = []
        self.client.on("task", self.pushed.append, namespace="/device")


def new_incident(http, server, description="积水 Flooded underpass"):
    created = http.post(
        f"{server.url}/api/v1/incidents",
        json={"lat": LAT, "lon": LON, "description": description, "category": "safety_hazard"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return created.json()["incident"]["id"]


def assign(http, server, incident_id, *person_ids):
    answer = http.post(
        f"{server.url}/api/v1/incidents/{incident_id}/assign",
        json={"person_ids": list(person_ids)},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_task_assigned_while_offline_is_delivered_once_on_reconnect(
    loop_server, make_phone, make_user, db
):
    person = make_phone(name="离线 Offline")
    http = staff_session(loop_server, make_user, "dispatcher")
    incident_id = new_incident(http, loop_server)
    detail = assign(http, loop_server, incident_id, person.person_id)
    (task,) = detail["tasks"]
    assert task["status"] == "sent" and task["reachable"] is True

    for attempt in range(2):  # connect, then reconnect: the second sync must not redeliver
        phone = RecordingPhone(loop_server.url, person.token).connect()
        synced = phone.call("sync", {})
        assert synced["ok"] and synced["person"]["name"] == "离线 Offline"
        mine = [t for t in synced["tasks"] if t["incident_id"] == incident_id]
        assert [t["status"] for t in mine] == (["sent"] if attempt == 0 else ["delivered"])
        assert mine[0]["lat"] == pytest.approx(LAT) and mine[0]["category"] == "safety_hazard"
        ack = phone.call("task_update", {"id": task["id"], "status": "delivered"})
        assert ack == {"ok": True, "id": task["id"], "status": "delivered"}
        phone.close()

    assert rows(
        db, "SELECT status, delivered_at IS NOT NULL FROM tasks WHERE id = :id", id=task["id"]
    ) == [("delivered", True)]
    kinds = rows(
        db, "SELECT kind FROM incident_events WHERE task_id = :id ORDER BY id", id=task["id"]
    )
    assert kinds == [("assigned",), ("delivered",)]


def test_status_update_during_a_restart_is_applied_once(database_url, make_phone, make_user, db):
    server = ServerProcess(database_url)
    server.start()
    try:
        person = make_phone(name="重启 Restart")
        http = staff_session(server, make_user, "dispatcher")
        incident_id = new_incident(http, server)
        (task,) = assign(http, server, incident_id, person.person_id)["tasks"]
        phone = RecordingPhone(server.url, person.token).connect()
        assert phone.call("task_update", {"id": task["id"], "status": "accepted"})["ok"]
        # The phone did not get this ack (the server died): it keeps the update and resends.
        server.kill()
        server.start()
        phone.close()
        phone = RecordingPhone(server.url, person.token).connect()
        for _ in range(3):
            ack = phone.call("task_update", {"id": task["id"], "status": "accepted"})
            assert ack == {"ok": True, "id": task["id"], "status": "accepted"}
        assert phone.call("task_update", {"id": task["id"], "status": "done"})["status"] == "done"
        # An accept resent after done changes nothing: moves only go forward.
        late = phone.call("task_update", {"id": task["id"], "status": "accepted"})
        assert late == {"ok": True, "id": task["id"], "status": "done"}
        phone.close()
    finally:
        server.stop()
    steps = rows(
        db, "SELECT kind FROM incident_events WHERE task_id = :id ORDER BY id", id=task["id"]
    )
    assert steps == [("assigned",), ("accepted",), ("done",)]
    assert rows(db, "SELECT status FROM incidents WHERE id = :id", id=incident_id) == [("done",)]


def test_cancel_and_reassign_reach_the_phones(loop_server, make_phone, make_user, db):
    first, second = make_phone(name="甲 First"), make_phone(name="乙 Second")
    http = staff_session(loop_server, make_user, "dispatcher")
    phones = {
        p.person_id: RecordingPhone(loop_server.url, p.token).connect() for p in (first, second)
    }
    incident_id = new_incident(http, loop_server)
    (task,) = assign(http, loop_server, incident_id, first.person_id)["tasks"]
    phone_a, phone_b = phones[first.person_id], phones[second.person_id]
    assert wait_for(lambda: [t for t in phone_a.pushed if t["id"] == task["id"]])
    assert phone_a.call("task_update", {"id": task["id"], "status": "accepted"})["ok"]

    moved = http.post(
        f"{loop_server.url}/api/v1/incidents/{incident_id}/tasks/{task['id']}/reassign",
        json={"person_id": second.person_id, "note": "甲在处理另一件事"},
        timeout=10,
    )
    assert moved.status_code == 200, moved.text
    by_person = {t["person_id"]: t for t in moved.json()["tasks"]}
    assert by_person[first.person_id]["status"] == "cancelled"
    assert by_person[second.person_id]["status"] == "sent"
    assert wait_for(
        lambda: any(t["id"] == task["id"] and t["status"] == "cancelled" for t in phone_a.pushed)
    ), "the first phone was not told its task was cancelled"
    new_id = by_person[second.person_id]["id"]
    assert wait_for(lambda: any(t["id"] == new_id for t in phone_b.pushed))
    # The first phone's late answer is told the truth rather than applied.
    late = phone_a.call("task_update", {"id": task["id"], "status": "done"})
    assert late == {"ok": True, "id": task["id"], "status": "cancelled"}

    cancelled = http.post(
        f"{loop_server.url}/api/v1/incidents/{incident_id}/tasks/{new_id}/cancel",
        json={"note": "误报"},
        timeout=10,
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "open"
    assert wait_for(
        lambda: any(t["id"] == new_id and t["status"] == "cancelled" for t in phone_b.pushed)
    )
    again = http.post(
        f"{loop_server.url}/api/v1/incidents/{incident_id}/tasks/{new_id}/cancel",
        json={},
        timeout=10,
    )
    assert again.status_code == 400 and "already cancelled" in again.json()["error"]
    for phone in phones.values():
        phone.close()
    assert rows(
        db, "SELECT person_id, status FROM tasks WHERE incident_id = :i ORDER BY id", i=incident_id
    ) == [(first.person_id, "cancelled"), (second.person_id, "cancelled")]
    history = rows(
        db,
        "SELECT kind, note FROM incident_events WHERE incident_id = :i ORDER BY id",
        i=incident_id,
    )
    assert ("reassigned", "甲在处理另一件事") in history and ("cancelled", "误报") in history


def test_dispatcher_handles_closes_and_reopens(loop_server, make_phone, make_user, db):
    person = make_phone(name="处置 Handler")
    http = staff_session(loop_server, make_user, "dispatcher")
    incident_id = new_incident(http, loop_server)
    (task,) = assign(http, loop_server, incident_id, person.person_id)["tasks"]
    url = f"{loop_server.url}/api/v1/incidents/{incident_id}"

    early_close = http.post(f"{url}/close", json={"note": "ok"}, timeout=10)
    assert early_close.status_code == 400
    assert early_close.json()["error"] == "incident: cannot close an incident that is assigned"
    no_note = http.post(f"{url}/handle", json={}, timeout=10)
    assert no_note.status_code == 400 and no_note.json()["error"] == "note: required for this step"

    handled = http.post(f"{url}/handle", json={"note": "已清理 Cleared"}, timeout=10)
    assert handled.status_code == 200 and handled.json()["status"] == "handled"
    assert handled.json()["handled_at"] is not None
    closed = http.post(f"{url}/close", json={"note": "核查通过"}, timeout=10)
    assert closed.json()["status"] == "closed"
    reopened = http.post(f"{url}/reopen", json={"note": "又堵了 Blocked again"}, timeout=10)
    # Reopened, the tasks decide again: the task is still standing, so it is `assigned`.
    assert reopened.json()["status"] == "assigned" and reopened.json()["closed_at"] is None

    listed = http.get(
        f"{loop_server.url}/api/v1/incidents",
        params={"status": "assigned,accepted", "category": "safety_hazard", "per_page": 1},
        timeout=10,
    ).json()
    assert listed["per_page"] == 1 and len(listed["incidents"]) == 1 and listed["total"] >= 1
    bad = http.get(f"{loop_server.url}/api/v1/incidents", params={"status": "lost"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"].startswith("status: must be among")

    viewer = staff_session(loop_server, make_user, "viewer")
    assert viewer.post(f"{url}/handle", json={"note": "x"}, timeout=10).status_code == 403
    history = rows(
        db,
        "SELECT kind, note FROM incident_events WHERE incident_id = :i ORDER BY id",
        i=incident_id,
    )
    assert [h for h in history if h[0] in ("handled", "closed", "reopened")] == [
        ("handled", "已清理 Cleared"),
        ("closed", "核查通过"),
        ("reopened", "又堵了 Blocked again"),
    ]
    assert rows(db, "SELECT status FROM tasks WHERE id = :id", id=task["id"]) == [("sent",)]


def test_undelivered_task_raises_one_alert(loop_server, make_phone, make_user, db):
    person = make_phone(name="未送达 Unreached")
    http = staff_session(loop_server, make_user, "dispatcher")
    viewer, received = live_viewer(loop_server, http)
    # A fix so the person is in the viewer's scope rooms like any other.
    phone = TestPhone(loop_server.url, person.token).connect()
    assert phone.send([{"ts": now_ms(), "lat": LAT, "lon": LON}])["stored"] == 1
    phone.close()
    incident_id = new_incident(http, loop_server)
    (task,) = assign(http, loop_server, incident_id, person.person_id)["tasks"]
    alert = wait_for(
        lambda: [
            a
            for a in received["alert"]
            if a["kind"] == "task_undelivered" and a["details"]["task_id"] == task["id"]
        ],
        10.0,
    )
    assert alert, "no task_undelivered alert reached the viewer"
    assert alert[0]["details"]["incident_id"] == incident_id and alert[0]["note"] is None
    viewer.disconnect()
    wait_for(lambda: False, 1.0)  # more checks run: still one alert
    assert rows(
        db,
        "SELECT count(*) FROM alerts WHERE kind = 'task_undelivered' "
        "AND (details->>'task_id')::int = :t",
        t=task["id"],
    ) == [(1,)]
    assert ("undelivered",) in rows(
        db, "SELECT kind FROM incident_events WHERE task_id = :t", t=task["id"]
    )


def test_a_gps_app_user_is_shown_as_unable_to_receive_tasks(loop_server, make_phone, make_user):
    traccar, web = make_phone(name="轨迹 Traccar user"), make_phone(name="网页 Web app user")
    http = staff_session(loop_server, make_user, "dispatcher")
    answer = http.get(
        f"{loop_server.url}/osmand",
        params={"id": traccar.token, "lat": LAT, "lon": LON, "timestamp": now_ms() // 1000},
        timeout=10,
    )
    assert answer.status_code == 200
    TestPhone(loop_server.url, web.token).connect().close()
    incident_id = new_incident(http, loop_server)
    assign(http, loop_server, incident_id, traccar.person_id, web.person_id)

    def reachable_by_person():
        detail = http.get(f"{loop_server.url}/api/v1/incidents/{incident_id}", timeout=10).json()
        return {t["person_id"]: t["reachable"] for t in detail["tasks"]}

    # The client is recorded off the request's path: give it a moment.
    assert wait_for(lambda: reachable_by_person()[traccar.person_id] is False)
    assert reachable_by_person()[web.person_id] is True


def test_a_connected_phone_is_recorded_as_the_web_app(loop_server, make_phone, db):
    person = make_phone(name="网页 Connected")
    phone = TestPhone(loop_server.url, person.token).connect()

    def recorded():
        return rows(
            db,
            "SELECT client, last_socket_at IS NOT NULL FROM devices WHERE id = :d",
            d=person.device_id,
        )

    # Recorded by the next connection sweep (CUTOFF_INTERVAL_S), not by the connect itself.
    assert wait_for(lambda: recorded() == [("webapp", True)], 10.0), recorded()
    phone.close()
