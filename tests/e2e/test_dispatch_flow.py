"""Dispatch and live alerts end to end: real server, a phone on /device, a viewer on /live."""

from __future__ import annotations

import json
import uuid

from tests.e2e.phones import TestPhone, now_ms
from tests.e2e.staff import live_viewer, staff_session, wait_for


def phone_with_tasks(server, token):
    """Connect a phone that records the tasks it is sent."""
    phone = TestPhone(server.url, token)
    tasks: list[dict] = []
    phone.client.on("task", tasks.append, namespace="/device")
    phone.connect()
    return phone, tasks


def test_incident_nearest_assign_accept_done(server, make_phone, make_user):
    # Far from every other test's people, so that the nearest is known.
    lat, lon = -33.8688, 151.2093
    near, far = make_phone(name="近 Near"), make_phone(name="远 Far")
    http = staff_session(server, make_user, "dispatcher")
    viewer, received = live_viewer(server, http)
    phones = {}
    for person, offset in ((near, 0.001), (far, 0.01)):
        phone, tasks = phone_with_tasks(server, person.token)
        assert phone.call("duty", {"on": True})["ok"]
        assert phone.send([{"ts": now_ms(), "lat": lat + offset, "lon": lon}])["stored"] == 1
        phones[person.person_id] = (phone, tasks)

    created = http.post(
        f"{server.url}/api/v1/incidents",
        timeout=10,
        json={"lat": lat, "lon": lon, "description": "老人摔倒 Elderly fall"},
    )
    assert created.status_code == 201
    incident, candidates = created.json()["incident"], created.json()["candidates"]
    assert [c["person_id"] for c in candidates[:2]] == [near.person_id, far.person_id]
    assert 100 < candidates[0]["distance_m"] < 120  # 0.001° of latitude ≈ 111 m

    assigned = http.post(
        f"{server.url}/api/v1/incidents/{incident['id']}/assign",
        json={"person_ids": [near.person_id]},
        timeout=10,
    )
    assert assigned.status_code == 200 and assigned.json()["status"] == "assigned"
    phone, tasks = phones[near.person_id]
    assert wait_for(lambda: tasks, 2.0), "the task did not reach the phone"
    (task,) = tasks
    assert task["incident_id"] == incident["id"]
    assert task["description"] == "老人摔倒 Elderly fall"
    assert phones[far.person_id][1] == []

    assert phone.call("task_update", {"id": task["id"], "status": "accepted"}) == {
        "ok": True,
        "id": task["id"],
        "status": "accepted",
    }
    assert phone.call("task_update", {"id": task["id"], "status": "done"})["ok"]
    assert phone.call("task_update", {"id": task["id"] + 999, "status": "done"}) == {
        "ok": False,
        "error": "id: no such task for this person",
    }
    other = phones[far.person_id][0]
    assert other.call("task_update", {"id": task["id"], "status": "done"})["ok"] is False

    detail = http.get(f"{server.url}/api/v1/incidents/{incident['id']}", timeout=10).json()
    assert detail["status"] == "done"
    assert [(h["kind"], h["person_id"]) for h in detail["history"]] == [
        ("created", None),
        ("assigned", near.person_id),
        ("accepted", near.person_id),
        ("done", near.person_id),
    ]
    assert wait_for(
        lambda: any(
            i["id"] == incident["id"] and i["status"] == "done" for i in received["incident"]
        )
    )
    for p, _ in phones.values():
        p.close()
    viewer.disconnect()


def test_viewers_cannot_dispatch(server, make_user):
    http = staff_session(server, make_user, "viewer")
    response = http.post(
        f"{server.url}/api/v1/incidents", timeout=10, json={"lat": 1, "lon": 2, "description": "x"}
    )
    assert response.status_code == 403


def test_bad_incident_names_the_field(server, make_user):
    http = staff_session(server, make_user, "dispatcher")
    response = http.post(
        f"{server.url}/api/v1/incidents", timeout=10, json={"lat": 91, "lon": 2, "description": "x"}
    )
    assert (response.status_code, response.json()["error"]) == (
        400,
        "lat: must be between -90 and 90",
    )


def test_zone_exit_reaches_the_live_map(server, make_phone, make_user):
    tag = uuid.uuid4().hex[:6]
    http = staff_session(server, make_user, "admin")
    lat, lon = 22.5431, 114.0579  # Shenzhen, away from other tests' grids
    d = 0.002
    grid = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": f"深圳网格{tag}", "kind": "grid"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [lon - d, lat - d],
                            [lon + d, lat - d],
                            [lon + d, lat + d],
                            [lon - d, lat + d],
                            [lon - d, lat - d],
                        ]
                    ],
                },
            }
        ],
    }
    assert (
        http.post(
            f"{server.url}/api/v1/units/import",
            data=json.dumps(grid),
            timeout=10,
            headers={"Content-Type": "application/json"},
        ).status_code
        == 200
    )
    grid_id = next(
        g["unit_id"]
        for g in http.get(f"{server.url}/api/v1/coverage").json()["grids"]
        if g["name"] == f"深圳网格{tag}"
    )
    person = make_phone(role="grid_worker")
    assert (
        http.put(
            f"{server.url}/api/v1/people/{person.person_id}/patrol-unit",
            json={"unit_id": grid_id},
            timeout=10,
        ).status_code
        == 200
    )
    viewer, received = live_viewer(server, http)
    phone = TestPhone(server.url, person.token).connect()
    phone.call("duty", {"on": True})
    t = now_ms()
    phone.send([{"ts": t - 3000, "lat": lat, "lon": lon, "accuracy": 5}])
    assert wait_for(
        lambda: http.get(f"{server.url}/api/v1/units/{grid_id}/people").json()["inside"] == 1
    )
    phone.send([{"ts": t, "lat": lat + 3 * d, "lon": lon, "accuracy": 5}])
    exits = wait_for(
        lambda: [
            a
            for a in received["alert"]
            if a["person_id"] == person.person_id and a["kind"] == "zone_exit"
        ]
    )
    assert len(exits) == 1
    phone.close()
    viewer.disconnect()
