"""Roster preview, import, phones and export (docs/admin-api.md#rosters), against PostGIS."""

from __future__ import annotations

import base64
import io
import uuid

import openpyxl
import pytest
from sqlalchemy import func, select

from tracker.extensions import db
from tracker.models import AuditEvent, Device, Person

from .test_api import login


def numbers(count: int) -> list[str]:
    """Return phone numbers no other test uses."""
    stem = str(uuid.uuid4().int)[:6]
    return [f"137{stem}{n:02d}" for n in range(count)]


def xlsx(rows: list[list[object]]) -> bytes:
    """Return an XLSX workbook holding rows (the first is the header)."""
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list[object]], encoding: str) -> bytes:
    """Return rows as CSV text in an encoding (utf-8-sig for Excel's UTF-8 with BOM)."""
    return "\r\n".join(",".join(str(c) for c in row) for row in rows).encode(encoding)


def post(client, path: str, raw: bytes):
    """Post a roster file as the API takes it from the page."""
    return client.post(path, json={"file_base64": base64.b64encode(raw).decode()})


def people_with(app, phones: list[str]) -> list[Person]:
    """Return the people stored with these phone numbers."""
    with app.app_context():
        found = list(db.session.execute(select(Person).where(Person.phone.in_(phones))).scalars())
        for person in found:
            db.session.expunge(person)
        return found


@pytest.fixture()
def units(make_unit):
    """Return (street, grid) with unique names."""
    street = make_unit(name=f"街道{uuid.uuid4().hex[:6]}", kind="street")
    grid = make_unit(name=f"网格{uuid.uuid4().hex[:6]}", kind="grid", parent_id=street)
    return street, grid


def unit_name(app, unit_id: int) -> str:
    """Return a unit's name."""
    from tracker.models import Unit

    with app.app_context():
        return db.session.get(Unit, unit_id).name


@pytest.mark.parametrize("kind", ["xlsx", "utf-8-sig", "gbk"])
def test_preview_reads_xlsx_and_csv_in_utf8_and_gbk(app, client, make_user, units, kind):
    street, grid = units
    login(client, *make_user("dispatcher", street))
    a, b = numbers(2)
    rows = [
        ["姓名", "手机号", "角色", "所属单位", "巡查网格", "备注"],
        ["王芳", a, "志愿者", unit_name(app, grid), unit_name(app, grid), "x"],
        ["李强", b, "street_chief", str(street), "", ""],
    ]
    raw = xlsx(rows) if kind == "xlsx" else csv_bytes(rows, kind)
    answer = post(client, "/api/v1/roster/preview", raw)
    assert answer.status_code == 200, answer.json
    assert answer.json["ok"] is True
    first, second = answer.json["rows"]
    assert (first["row"], first["name"], first["role"], first["unit_id"]) == (
        2,
        "王芳",
        "volunteer",
        grid,
    )
    assert first["patrol_unit_id"] == grid and first["action"] == "create"
    assert (second["role"], second["unit_id"], second["patrol_unit_id"]) == (
        "street_chief",
        street,
        None,
    )
    assert people_with(app, [a, b]) == []


def test_one_bad_row_refuses_all_then_fixed_imports_and_reimport_updates(
    app, client, make_user, units
):
    street, grid = units
    login(client, *make_user("admin", street))
    a, b, c = numbers(3)
    grid_name = unit_name(app, grid)
    rows = [
        ["name", "phone", "role", "unit"],
        ["王芳", a, "志愿者", grid_name],
        ["李强", b, "boss", grid_name],
        ["张伟", c, "网格员", "no such unit"],
    ]
    with app.app_context():
        audit_rows = db.session.execute(select(func.count(AuditEvent.id))).scalar_one()
    refused = post(client, "/api/v1/roster/import", xlsx(rows))
    assert refused.status_code == 400
    assert refused.json["ok"] is False
    errors = {r["row"]: r["errors"] for r in refused.json["rows"]}
    assert errors[2] == []
    assert [e["column"] for e in errors[3]] == ["role"]
    assert errors[3][0]["error"].startswith("role: must be one of")
    assert [e["column"] for e in errors[4]] == ["unit"]
    assert "no such unit" in errors[4][0]["error"]
    assert people_with(app, [a, b, c]) == []
    with app.app_context():
        assert db.session.execute(select(func.count(AuditEvent.id))).scalar_one() == audit_rows

    rows[2][2], rows[3][3] = "街巷长", grid_name
    imported = post(client, "/api/v1/roster/import", xlsx(rows))
    assert imported.status_code == 200, imported.json
    assert (imported.json["created"], imported.json["updated"], imported.json["unchanged"]) == (
        3,
        0,
        0,
    )
    stored = {p.phone: p for p in people_with(app, [a, b, c])}
    assert (stored[b].name, stored[b].role, stored[b].unit_id) == ("李强", "street_chief", grid)
    assert sorted(imported.json["person_ids"]) == sorted(p.id for p in stored.values())

    rows[1][0] = "王芳芳"
    again = post(client, "/api/v1/roster/import", xlsx(rows))
    assert again.status_code == 200, again.json
    assert (again.json["created"], again.json["updated"], again.json["unchanged"]) == (0, 1, 2)
    assert len(people_with(app, [a, b, c])) == 3
    assert {p.phone: p.name for p in people_with(app, [a])} == {a: "王芳芳"}
    with app.app_context():
        actions = (
            db.session.execute(
                select(AuditEvent.action).where(
                    AuditEvent.target_kind == "person", AuditEvent.target_id == stored[a].id
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["person.create", "person.update"]


def test_duplicates_in_file_and_ambiguous_units_name_the_row(app, client, make_user, make_unit):
    name = f"同名{uuid.uuid4().hex[:6]}"
    first = make_unit(name=name, kind="grid", parent_id=make_unit(kind="community"))
    second = make_unit(name=name, kind="grid", parent_id=make_unit(kind="community"))
    assert first != second
    login(client, *make_user("admin"))
    (a,) = numbers(1)
    rows = [
        ["姓名", "电话", "角色", "单位"],
        ["x", a, "志愿者", name],
        ["y", a, "志愿者", str(first)],
    ]
    answer = post(client, "/api/v1/roster/preview", csv_bytes(rows, "utf-8"))
    assert answer.json["ok"] is False
    one, two = answer.json["rows"]
    assert one["errors"][0]["column"] == "单位" and "give the id" in one["errors"][0]["error"]
    assert two["errors"][0] == {
        "column": "电话",
        "error": f"电话: {a} is also on row 2",
        "message": f"电话：{a} 也出现在第 2 行",
    }


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"\x89PNG\r\n\x1a\n\0\0\0", "file: neither an XLSX workbook nor CSV text"),
        (b"PK\x03\x04garbage", "file: not a readable XLSX workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1", "file: an old Excel .xls workbook"),
        ("phone,role\n1,志愿者\n".encode(), "file: no name column"),
        (b"", "file: is empty"),
    ],
)
def test_unreadable_files_are_refused(client, make_user, raw, problem):
    login(client, *make_user("admin"))
    answer = post(client, "/api/v1/roster/preview", raw)
    assert answer.status_code == 400
    assert answer.json["error"].startswith(problem), answer.json


def test_too_many_rows_are_refused(client, make_user):
    login(client, *make_user("admin"))
    raw = ("name,role\n" + "x,volunteer\n" * 5001).encode()
    answer = post(client, "/api/v1/roster/preview", raw)
    assert answer.status_code == 400 and answer.json["error"] == "file: more than 5000 rows"


def test_export_round_trips_as_unchanged(app, client, make_user, units):
    street, grid = units
    login(client, *make_user("dispatcher", street))
    a, b = numbers(2)
    rows = [
        ["姓名", "手机号", "角色", "单位", "巡查网格"],
        ["王芳", a, "志愿者", str(grid), str(grid)],
        ["李强", b, "巡逻队员", str(street), ""],
    ]
    assert post(client, "/api/v1/roster/import", xlsx(rows)).status_code == 200
    exported = client.get(f"/api/v1/roster/export.xlsx?unit_id={street}")
    assert exported.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(exported.data)).active
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert table[0] == ["姓名", "手机号", "角色", "单位", "巡查网格"]
    assert ["王芳", a, "志愿者", unit_name(app, grid), unit_name(app, grid)] in table
    again = post(client, "/api/v1/roster/import", exported.data)
    assert again.status_code == 200, again.json
    assert (again.json["created"], again.json["updated"]) == (0, 0)
    assert again.json["unchanged"] == len(table) - 1


def test_roster_devices_issue_one_phone_each_shown_once(app, client, make_user, make_phone):
    people = [make_phone(), make_phone()]
    login(client, *make_user("dispatcher"))
    answer = client.post(
        "/api/v1/roster/devices",
        json={"person_ids": [p.person_id for p in people], "label": "打印"},
    )
    assert answer.status_code == 201, answer.json
    issued = answer.json["devices"]
    assert [d["person_id"] for d in issued] == [p.person_id for p in people]
    assert all(
        d["pairing_url"].endswith(d["token"]) and d["qr_svg"].startswith("<") for d in issued
    )
    with app.app_context():
        for d in issued:
            assert db.session.get(Device, d["id"]).label == "打印"
    missing = client.post(
        "/api/v1/roster/devices", json={"person_ids": [people[0].person_id, 2**30]}
    )
    assert missing.status_code == 404
    assert missing.json["error"] == f"person_ids: person {2**30} not found"
    with app.app_context():
        count = db.session.execute(
            select(func.count(Device.id)).where(Device.person_id == people[0].person_id)
        ).scalar_one()
    assert count == 2  # the fixture's phone and the sheet's, not a third


def test_a_roster_file_upload_needs_this_sites_origin(client, make_user, units):
    """A form post can come from any site: multipart is accepted only with our Origin."""
    street, _ = units
    login(client, *make_user("dispatcher", street))
    raw = csv_bytes([["姓名", "手机号", "角色"], ["赵敏", numbers(1)[0], "志愿者"]], "utf-8")

    def upload(headers):
        form = {"file": (io.BytesIO(raw), "roster.csv")}
        return client.post("/api/v1/roster/preview", data=form, headers=headers)

    refused = upload({})
    assert refused.status_code == 403
    assert refused.json["error"] == "origin: a file upload must come from this site's pages"
    assert upload({"Origin": "http://evil.example"}).status_code == 403
    accepted = upload({"Origin": "http://localhost"})
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["rows"][0]["name"] == "赵敏"
