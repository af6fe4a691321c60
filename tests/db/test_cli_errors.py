"""Bad input to the CLI: one line naming the argument and the rule, no traceback, nothing stored.

Two shapes of refusal, asserted exactly:
- a value the command checks (`InputError`): the whole output is one line,
  `Error: ARGUMENT: rule`, exit status 1;
- a value click's own types refuse (ranges, choices): click's usage hint (`Usage: ...` and
  `Try '... --help' for help.`, then a blank line) and one line
  `Error: Invalid value for 'ARGUMENT': rule`, exit status 2.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from tracker import store
from tracker.extensions import db
from tracker.models import Device, Person, Position, Unit, User


def snapshot(app) -> dict[str, int]:
    """Return the row counts (and revoked devices, patrol assignments) the CLI could change."""
    with app.app_context():

        def count(stmt) -> int:
            return db.session.execute(stmt).scalar_one()

        return {
            "units": count(select(func.count()).select_from(Unit)),
            "people": count(select(func.count()).select_from(Person)),
            "patrols": count(select(func.count(Person.patrol_unit_id))),
            "devices": count(select(func.count()).select_from(Device)),
            "revoked": count(select(func.count(Device.revoked_at))),
            "users": count(select(func.count()).select_from(User)),
            "positions": count(select(func.count()).select_from(Position)),
        }


# The refusals are asserted in English: drop a Chinese locale of the shell running the tests.
ENGLISH_ENV = {"LC_ALL": None, "LC_MESSAGES": None, "LANG": None}


def refused(app, runner, args: list[str], stdin: str | None = None) -> list[str]:
    """Run a command that must be refused; return its output lines after the common checks."""
    before = snapshot(app)
    result = runner.invoke(args=args, input=stdin, env=ENGLISH_ENV)
    assert result.exit_code != 0, result.output
    # CliRunner keeps an unhandled exception instead of printing its traceback; a handled
    # refusal ends in SystemExit.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert snapshot(app) == before
    return result.output.splitlines()


def one_line(app, runner, args: list[str], stdin: str | None = None) -> str:
    """Run a command the code refuses; return the one line it printed (exit status 1)."""
    lines = refused(app, runner, args, stdin)
    assert len(lines) == 1, lines
    return lines[0]


def usage_error(app, runner, args: list[str]) -> str:
    """Run a command click's types refuse; return its error line after the usage hint."""
    lines = refused(app, runner, args)
    assert len(lines) == 4, lines
    usage, hint, blank, error = lines
    assert usage.startswith("Usage: ") and hint.startswith("Try '") and blank == ""
    assert error.startswith("Error: Invalid value for '")
    return error


@dataclass
class World:
    """Committed rows and a folder for files, for the commands to refer to."""

    unit_id: int
    person_id: int
    device_id: int
    revoked_device_id: int
    username: str
    files: Path

    def file(self, name: str, content: str | bytes) -> str:
        """Write a file and return its path."""
        path = self.files / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)


MISSING = "999999999"


@pytest.fixture()
def world(app, make_unit, make_phone, make_user, tmp_path) -> World:
    """Return a unit, a person with a device, a revoked device and a staff account."""
    unit_id = make_unit()
    phone = make_phone(unit_id=unit_id)
    revoked = make_phone()
    with app.app_context():
        store.devices.revoke_device(db.session, revoked.device_id)
        db.session.commit()
    username, _ = make_user("viewer")
    return World(unit_id, phone.person_id, phone.device_id, revoked.device_id, username, tmp_path)


def polygon(*rings: list[list[float]]) -> str:
    """Return a GeoJSON Polygon with these rings."""
    return json.dumps({"type": "Polygon", "coordinates": list(rings)})


SQUARE = [[116.40, 39.90], [116.41, 39.90], [116.41, 39.91], [116.40, 39.91], [116.40, 39.90]]


# --- units add ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("网" * 101, "must be at most 100 characters, got 101"),
        ("第1\n网格", "must not contain control characters"),
    ],
)
def test_units_add_refuses_bad_names(app, runner, name, rule):
    assert one_line(app, runner, ["units", "add", name, "--kind", "grid"]) == (
        f"Error: NAME: {rule}"
    )


def test_units_add_refuses_unknown_kind_and_parent(app, runner):
    assert one_line(app, runner, ["units", "add", "Grid 9", "--kind", "zone"]) == (
        "Error: --kind: must be one of district, street, community, grid, got 'zone'"
    )
    assert one_line(
        app, runner, ["units", "add", "Grid 9", "--kind", "grid", "--parent", MISSING]
    ) == (f"Error: --parent: no unit with id {MISSING}")


def test_units_add_refuses_a_duplicate_with_or_without_parent(app, runner, world):
    name = f"网格 {uuid.uuid4().hex[:6]}"
    under = ["units", "add", name, "--kind", "grid", "--parent", str(world.unit_id)]
    assert runner.invoke(args=under).exit_code == 0
    assert one_line(app, runner, under) == (
        f"Error: NAME: a grid named '{name}' already exists under unit {world.unit_id} "
        "(`units import` updates boundaries)"
    )
    # Surrounding spaces are not part of a name, so they do not make a second unit.
    top = ["units", "add", f"  {name} ", "--kind", "district"]
    assert runner.invoke(args=top).exit_code == 0
    assert one_line(app, runner, top) == (
        f"Error: NAME: a district named '{name}' already exists without a parent "
        "(`units import` updates boundaries)"
    )


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        ("[1, 2]", "b.geojson: must be a GeoJSON object, got list"),
        ('"Polygon"', "b.geojson: must be a GeoJSON object, got str"),
        (
            json.dumps({"type": "Point", "coordinates": [116.4, 39.9]}),
            "b.geojson: geometry must be Polygon or MultiPolygon, got Point",
        ),
        (
            polygon([[116.40, 39.90], [116.41, 39.91]]),
            "b.geojson: geometry.coordinates[0] has 2 positions; a ring needs at least 4, "
            "the last equal to the first",
        ),
        (
            polygon(SQUARE[:4]),
            "b.geojson: geometry.coordinates[0] is not closed: its last position must equal "
            "its first",
        ),
        (
            polygon(SQUARE, [[116.401, 39.901], [116.402, 39.901], [116.401, 39.901]]),
            "b.geojson: geometry.coordinates[1] has 3 positions; a ring needs at least 4, "
            "the last equal to the first",
        ),
        (
            '{"type": "Polygon", "coordinates": [[[NaN, 39.9], [116.41, 39.9], '
            "[116.41, 39.91], [NaN, 39.9]]]}",
            "b.geojson: geometry.coordinates[0][0] must be finite numbers, got [nan, 39.9]",
        ),
        (
            polygon([[500000, 4400000], [501000, 4400000], [501000, 4401000], [500000, 4400000]]),
            "b.geojson: coordinate [500000.0, 4400000.0] at geometry.coordinates[0][0] is not "
            "WGS-84 longitude/latitude (lon -180..180, lat -90..90)",
        ),
        (
            polygon([[116.4, 39.9], [10**400, 39.9], [116.41, 39.91], [116.4, 39.9]]),
            "b.geojson: geometry.coordinates[0][1] holds a number too large to be a degree",
        ),
        (
            polygon([[116.4, 39.9], [True, 39.9], [116.41, 39.91], [116.4, 39.9]]),
            "b.geojson: geometry.coordinates[0][1] must be a position [lon, lat]",
        ),
        (
            # Collinear: a line, not an area, whatever the repair does.
            polygon([[0, 0], [1, 1], [2, 2], [0, 0]]),
            "b.geojson: geometry: empty after repair",
        ),
        (
            json.dumps({"type": "FeatureCollection", "features": []}),
            "b.geojson: features: expected exactly one feature, got 0",
        ),
        (
            json.dumps(
                {
                    "type": "Feature",
                    "crs": {"type": "name", "properties": {"name": "EPSG:3857"}},
                    "geometry": json.loads(polygon(SQUARE)),
                }
            ),
            "b.geojson: crs: must be WGS-84 longitude/latitude (EPSG:4326), got EPSG:3857",
        ),
    ],
)
def test_units_add_refuses_bad_boundaries(app, runner, world, content, rule):
    path = world.file("b.geojson", content)
    args = ["units", "add", "Grid 9", "--kind", "grid", "--boundary", path]
    assert one_line(app, runner, args) == f"Error: --boundary: {rule}"


def test_units_add_refuses_boundary_files_that_are_not_json_text(app, runner, world):
    args = ["units", "add", "Grid 9", "--kind", "grid", "--boundary"]
    line = one_line(app, runner, [*args, world.file("b.geojson", "POLYGON((0 0, 1 0, 1 1))")])
    assert line.startswith("Error: --boundary: b.geojson: not valid JSON (Expecting value: ")
    assert one_line(app, runner, [*args, world.file("b.geojson", b"\x89PNG\r\n\x1a\n")]) == (
        "Error: --boundary: b.geojson: not UTF-8 text (byte offset 0); save it as UTF-8"
    )


def test_units_add_accepts_a_feature_with_altitudes_and_a_bom(app, runner, world):
    feature = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[[*p, 44.5] for p in SQUARE]]},
    }
    path = world.file("b.geojson", "\ufeff" + json.dumps(feature))
    result = runner.invoke(
        args=["units", "add", f"g-{uuid.uuid4().hex[:6]}", "--kind", "grid", "--boundary", path]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        kind = db.session.execute(
            select(func.ST_AsText(Unit.boundary)).where(Unit.id == int(result.output))
        ).scalar_one()
    assert kind.startswith("MULTIPOLYGON(((116.4 39.9,")


# --- units import ------------------------------------------------------------------------


def test_units_import_refuses_unreadable_files_and_bad_rings(app, runner, world):
    line = one_line(app, runner, ["units", "import", world.file("g.geojson", "{")])
    assert line.startswith("Error: GEOJSON: g.geojson: not valid JSON (")
    assert one_line(app, runner, ["units", "import", world.file("g.geojson", b"\xff\xfe{")]) == (
        "Error: GEOJSON: g.geojson: not UTF-8 text (byte offset 0); save it as UTF-8"
    )
    assert one_line(app, runner, ["units", "import", world.file("g.geojson", "[]")]) == (
        "Error: GEOJSON: g.geojson: nothing imported: file: must be a GeoJSON FeatureCollection"
    )
    good = {
        "type": "Feature",
        "properties": {"name": f"好 {uuid.uuid4().hex[:6]}", "kind": "grid"},
        "geometry": json.loads(polygon(SQUARE)),
    }
    two_points = {
        "type": "Feature",
        "properties": {"name": "两点", "kind": "grid"},
        "geometry": json.loads(polygon([[116.40, 39.90], [116.41, 39.91]])),
    }
    doc = {"type": "FeatureCollection", "features": [good, two_points]}
    assert one_line(app, runner, ["units", "import", world.file("g.geojson", json.dumps(doc))]) == (
        "Error: GEOJSON: g.geojson: nothing imported: features[1] (两点): "
        "geometry.coordinates[0] has 2 positions; a ring needs at least 4, "
        "the last equal to the first"
    )


# --- people ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "rule"),
    [
        ("--name", "", "must not be empty"),
        ("--name", " \t ", "must not be empty"),
        ("--name", "王" * 101, "must be at most 100 characters, got 101"),
        ("--name", "王芳\x00", "must not contain control characters"),
        ("--role", "chief", None),
        ("--unit", MISSING, f"no unit with id {MISSING}"),
        ("--phone", "call me", "must be 1 to 32 digits, spaces, + and -, with at least one digit"),
        ("--phone", "1" * 33, "must be 1 to 32 digits, spaces, + and -, with at least one digit"),
        ("--phone", "+-", "must be 1 to 32 digits, spaces, + and -, with at least one digit"),
        ("--phone", "", "must be 1 to 32 digits, spaces, + and -, with at least one digit"),
    ],
)
def test_people_add_refuses_bad_values(app, runner, option, value, rule):
    values = {"--name": "王芳", "--role": "volunteer", option: value}
    args = ["people", "add"] + [part for item in values.items() for part in item]
    if rule is None:  # the roles come from the configuration
        roles = ", ".join(app.config["PERSON_ROLES"])
        rule = f"must be one of {roles}, got 'chief'"
    assert one_line(app, runner, args) == f"Error: {option}: {rule}"


def test_people_add_keeps_a_phone_like_number_and_trims_the_name(app, runner):
    result = runner.invoke(
        args=[
            "people",
            "add",
            "--name",
            "  王芳 ",
            "--role",
            "volunteer",
            "--phone",
            "+86 138-0013-8000",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        person = db.session.get(Person, int(result.output))
        assert (person.name, person.phone) == ("王芳", "+86 138-0013-8000")


def test_people_assign_refuses_missing_person_and_grid(app, runner, world):
    assert one_line(app, runner, ["people", "assign", MISSING, "--grid", str(world.unit_id)]) == (
        f"Error: PERSON_ID: no person with id {MISSING}"
    )
    assert one_line(app, runner, ["people", "assign", str(world.person_id), "--grid", MISSING]) == (
        f"Error: --grid: no unit with id {MISSING}"
    )


# --- devices -----------------------------------------------------------------------------


def test_devices_issue_refuses_missing_person_and_bad_labels(app, runner, world):
    assert one_line(app, runner, ["devices", "issue", MISSING]) == (
        f"Error: PERSON_ID: no person with id {MISSING}"
    )
    issue = ["devices", "issue", str(world.person_id), "--label"]
    assert one_line(app, runner, [*issue, " "]) == "Error: --label: must not be empty"
    assert one_line(app, runner, [*issue, "R" * 101]) == (
        "Error: --label: must be at most 100 characters, got 101"
    )
    assert one_line(app, runner, [*issue, "track import"]) == (
        "Error: --label: 'track import' is reserved for imported tracks"
    )


def test_devices_revoke_tells_missing_from_already_revoked(app, runner, world):
    assert one_line(app, runner, ["devices", "revoke", MISSING]) == (
        f"Error: DEVICE_ID: no device with id {MISSING}"
    )
    assert one_line(app, runner, ["devices", "revoke", str(world.revoked_device_id)]) == (
        f"Error: DEVICE_ID: device {world.revoked_device_id} is already revoked"
    )


# --- users -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "rule"),
    [
        ("", "must not be empty"),
        ("u" * 65, "must be at most 64 characters, got 65"),
        ("zhang wei", "must not contain spaces or control characters"),
        ("zhang\twei", "must not contain spaces or control characters"),
    ],
)
def test_users_add_refuses_bad_usernames(app, runner, username, rule):
    args = ["users", "add", username, "--role", "viewer", "--password-stdin"]
    assert one_line(app, runner, args, "long enough password\n") == f"Error: USERNAME: {rule}"


def test_users_add_refuses_existing_user_missing_unit_and_short_password(app, runner, world):
    add = ["users", "add", world.username, "--role", "viewer", "--password-stdin"]
    assert one_line(app, runner, add, "long enough password\n") == (
        f"Error: USERNAME: a staff account named '{world.username}' already exists"
    )
    fresh = ["users", "add", f"u{uuid.uuid4().hex[:8]}", "--role", "viewer", "--password-stdin"]
    assert one_line(app, runner, [*fresh, "--unit", MISSING], "long enough password\n") == (
        f"Error: --unit: no unit with id {MISSING}"
    )
    assert one_line(app, runner, fresh, "short\n") == (
        "Error: password: must be at least 8 characters"
    )
    assert one_line(app, runner, fresh, "") == "Error: password: must be at least 8 characters"
    error = usage_error(app, runner, ["users", "add", "zhang", "--role", "boss"])
    assert error.startswith("Error: Invalid value for '--role': 'boss' is not one of 'admin'")


def test_users_passwd_refuses_unknown_user_and_short_password(app, runner, world):
    assert one_line(
        app, runner, ["users", "passwd", "nobody-here", "--password-stdin"], "x" * 9
    ) == ("Error: USERNAME: no staff account named 'nobody-here'")
    line = one_line(
        app, runner, ["users", "passwd", world.username, "--password-stdin"], "1234567\n"
    )
    assert line == "Error: password: must be at least 8 characters"


# --- partitions --------------------------------------------------------------------------


def test_partition_days_are_bounded(app, runner):
    assert usage_error(app, runner, ["partitions", "prune", "--retention-days", "999999999"]) == (
        "Error: Invalid value for '--retention-days': 999999999 is not in the range 1<=x<=36600."
    )
    assert usage_error(app, runner, ["partitions", "ensure", "--days-ahead", "-1"]) == (
        "Error: Invalid value for '--days-ahead': -1 is not in the range 0<=x<=366."
    )


# --- import-track ------------------------------------------------------------------------

GOOD_ROW = "2026-01-02T03:04:05Z,39.9,116.4"


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        (
            "walk.csv",
            b"ts,lat,lon\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "walk.csv: binary content (a NUL byte on line 4): not a UTF-8 text track file",
        ),
        (
            "walk.csv",
            f"ts,lat,lon\n{GOOD_ROW}\n{GOOD_ROW},café\n".encode("latin-1"),
            "walk.csv: not UTF-8 text (byte 0xe9 on line 3); save it as UTF-8",
        ),
        ("walk.csv", "ts,latitude,longitude\n1,2,3\n", "walk.csv: csv: header lacks lat, lon"),
        ("walk.csv", "ts,lat,lon\n", "walk.csv: no points with positions"),
        (
            "walk.csv",
            f'ts,lat,lon\n{GOOD_ROW}\n"{"x" * 200_000}",39.9,116.4\n',
            "walk.csv: csv: line 3: field larger than field limit (131072)",
        ),
        (
            "walk.txt",
            f"ts,lat,lon\n{GOOD_ROW}\n",
            "walk.txt: unknown format (use .gpx, .geojson, .json or .csv)",
        ),
        (
            "walk.geojson",
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "geometry": {"type": "Point", "coordinates": [116.4, 39.9]},
                        },
                        {"type": "Feature", "geometry": {"type": "Point"}},
                    ],
                }
            ),
            "walk.geojson: geojson: features[1].geometry.coordinates must be [lon, lat]",
        ),
        (
            "walk.geojson",
            json.dumps({"type": "FeatureCollection", "features": 5}),
            "walk.geojson: geojson: features must be a list of Point features",
        ),
        (
            "walk.geojson",
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": ["ts", "2026-01-02T03:04:05Z"],
                            "geometry": {"type": "Point", "coordinates": [116.4, 39.9]},
                        }
                    ],
                }
            ),
            "walk.geojson: geojson: features[0].properties must be an object",
        ),
        ("walk.geojson", "[" * 100_000, "walk.geojson: nested too deeply to be a track"),
    ],
)
def test_import_track_refuses_unreadable_files(app, runner, world, name, content, rule):
    path = world.file(name, content)
    assert one_line(app, runner, ["import-track", str(world.person_id), path]) == (
        f"Error: PATH: {rule}"
    )


def test_import_track_refuses_a_missing_person_and_a_malformed_gpx(app, runner, world):
    csv_path = world.file("walk.csv", f"ts,lat,lon\n{GOOD_ROW}\n")
    assert one_line(app, runner, ["import-track", MISSING, csv_path]) == (
        f"Error: PERSON_ID: no person with id {MISSING}"
    )
    gpx = world.file("walk.gpx", "<gpx><trk><trkseg><trkpt lat='north' lon='1'/>")
    assert one_line(app, runner, ["import-track", str(world.person_id), gpx]).startswith(
        "Error: PATH: walk.gpx: gpx: "
    )


def test_import_track_with_no_valid_point_names_the_rules_and_lines(app, runner, world):
    path = world.file(
        "walk.csv", "ts,lat,lon\n\nnot-a-time,39.9,116.4\n2026-01-02T03:04:05Z,91,116.4\n"
    )
    line = one_line(app, runner, ["import-track", str(world.person_id), path])
    assert line.startswith("Error: PATH: walk.csv: nothing to store: rejected 1 × ts: ")
    # The blank line 2 is skipped by the reader but counted in the line numbers.
    assert "(first at line 3); rejected 1 × lat: must be between -90 and 90 (first at line 4)" in (
        line
    )


def test_import_track_names_the_line_of_each_rejection_it_skips(app, runner, world):
    path = world.file("walk.csv", f"ts,lat,lon\n{GOOD_ROW}\n2026-01-02T03:04:06Z,91,116.4\n")
    result = runner.invoke(args=["import-track", str(world.person_id), path])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [
        "walk.csv: 2 points, 1 stored, 0 duplicates, 1 rejected",
        "  rejected 1 × lat: must be between -90 and 90 (first at line 3)",
    ]


def test_import_track_stores_nothing_when_the_database_fails_midway(
    app, runner, world, monkeypatch
):
    rows = "\n".join(f"2026-01-02T03:{n // 60:02d}:{n % 60:02d}Z,39.9,116.4" for n in range(2500))
    path = world.file("long.csv", f"ts,lat,lon\n{rows}\n")
    real_insert = store.positions.insert_positions
    calls = []

    def insert_then_fail(session, chunk):
        calls.append(len(chunk))
        if len(calls) == 2:
            raise OperationalError("INSERT INTO positions", {}, Exception("connection lost"))
        return real_insert(session, chunk)

    monkeypatch.setattr(store.positions, "insert_positions", insert_then_fail)
    lines = refused(app, runner, ["import-track", str(world.person_id), path])
    assert calls == [2000, 500]
    # The progress bar's label comes first; the refusal is the last line.
    assert lines[-1] == "Error: PATH: long.csv: nothing stored: connection lost"
    assert all(not line.startswith("Error") for line in lines[:-1])


# --- simulate ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "line"),
    [
        (
            ["--area", "116.4,39.9,116.5"],
            "Error: --area: must be four numbers west,south,east,north",
        ),
        (
            ["--area", "116.5,39.9,116.4,40"],
            "Error: --area: west and east must be longitudes, -180 <= west < east <= 180",
        ),
        (
            ["--area", "nan,39.9,116.4,40"],
            "Error: --area: west and east must be longitudes, -180 <= west < east <= 180",
        ),
        (
            ["--area", "116.4,-95,116.5,40"],
            "Error: --area: south and north must be latitudes, -90 <= south < north <= 90",
        ),
        (["--unit", MISSING], f"Error: --unit: no unit with id {MISSING}"),
        (
            ["--area", "116.4,39.9,116.5,40", "--url", "ftp://example.org"],
            "Error: --url: must start with http:// or https://, got 'ftp://example.org'",
        ),
    ],
)
def test_simulate_refuses_bad_options_before_creating_anyone(app, runner, options, line):
    assert one_line(app, runner, ["simulate", "--people", "3", *options]) == line


def test_simulate_refuses_unreadable_traces(app, runner, world):
    area = ["simulate", "--people", "2", "--area", "116.4,39.9,116.5,40", "--trace"]
    binary = world.file("t.gpx", b"\x00\x01")
    assert one_line(app, runner, [*area, binary]) == (
        "Error: --trace: t.gpx: binary content (a NUL byte on line 1): not a UTF-8 text track file"
    )
    no_positions = world.file("t.csv", "ts,lat,lon\n2026-01-02T03:04:05Z,north,east\n")
    assert one_line(app, runner, [*area, no_positions]) == (
        "Error: --trace: t.csv: no points with valid lat and lon"
    )
    assert usage_error(
        app, runner, ["simulate", "--area", "116.4,39.9,116.5,40", "--duration", "0"]
    )
