"""Administration commands: `flask --app wsgi units|people|devices|users|partitions|seed-demo`."""

from __future__ import annotations

import io
import json
import math
import random
import secrets
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from . import queries
from .auth import hash_password, hash_token, new_device_token
from .extensions import db
from .geo import GeometryError, boundary_from_geojson
from .models import STAFF_ROLES, Unit

# Recorded tracks older than this are taken for broken clocks (GPS week rollovers, 1901...).
IMPORT_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

units_cli = AppGroup("units", help="Districts, streets, communities and grids.")
people_cli = AppGroup("people", help="Volunteers, street chiefs, grid workers, patrols.")
devices_cli = AppGroup("devices", help="Phones and their tokens.")
users_cli = AppGroup("users", help="Command-centre staff accounts.")
partitions_cli = AppGroup("partitions", help="Upkeep of the positions partitions.")


def _check_unit(unit_id: int | None) -> None:
    """Fail with a clear message if a unit id does not exist."""
    if unit_id is not None and db.session.get(Unit, unit_id) is None:
        raise click.BadParameter(f"no unit with id {unit_id}", param_hint="--unit/--parent")


@units_cli.command("add")
@click.argument("name")
@click.option("--kind", required=True, help="district, street, community or grid")
@click.option("--parent", "parent_id", type=int, help="id of the unit above this one")
@click.option("--boundary", type=click.File("r", encoding="utf-8"), help="GeoJSON polygon file")
def add_unit(name: str, kind: str, parent_id: int | None, boundary) -> None:
    """Add a unit; print its id."""
    _check_unit(parent_id)
    wkt = None
    if boundary is not None:
        try:
            geom, repaired = boundary_from_geojson(json.load(boundary))
        except (ValueError, GeometryError) as exc:
            raise click.BadParameter(str(exc), param_hint="--boundary") from None
        if repaired:
            click.echo("boundary was invalid and has been repaired", err=True)
        wkt = geom.wkt
    unit = queries.add_unit(db.session, name, kind, parent_id, wkt)
    db.session.commit()
    click.echo(unit.id)


@units_cli.command("import")
@click.argument("geojson", type=click.File("r", encoding="utf-8-sig"))
def import_units_command(geojson) -> None:
    """Create or update units from a GeoJSON FeatureCollection (name, kind, parent)."""
    from .zones.importer import BoundaryImportError, import_units

    try:
        report = import_units(db.session, json.load(geojson))
    except (ValueError, BoundaryImportError) as exc:
        db.session.rollback()
        raise click.ClickException(f"nothing imported: {exc}") from None
    db.session.commit()
    click.echo(f"{len(report.created)} units created, {len(report.updated)} updated")
    for line in report.repaired:
        click.echo(f"  repaired {line}")


@people_cli.command("assign")
@click.argument("person_id", type=int)
@click.option("--grid", "grid_id", type=int, help="the grid to patrol; omit to clear")
def assign_person(person_id: int, grid_id: int | None) -> None:
    """Assign a person to the grid they patrol (their zone)."""
    _check_unit(grid_id)
    if not queries.assign_patrol_unit(db.session, person_id, grid_id):
        raise click.BadParameter(f"no person with id {person_id}", param_hint="PERSON_ID")
    db.session.commit()
    click.echo(f"person {person_id} patrols {'grid ' + str(grid_id) if grid_id else 'no grid'}")


@people_cli.command("add")
@click.option("--name", required=True)
@click.option("--role", required=True, help="volunteer, street_chief, grid_worker, patrol, ...")
@click.option("--unit", "unit_id", type=int)
@click.option("--phone")
def add_person(name: str, role: str, unit_id: int | None, phone: str | None) -> None:
    """Add a person; print their id."""
    roles = current_app.config["PERSON_ROLES"]
    if role not in roles:
        raise click.BadParameter(f"must be one of {', '.join(roles)}", param_hint="--role")
    _check_unit(unit_id)
    person = queries.add_person(db.session, name, role, unit_id, phone)
    db.session.commit()
    click.echo(person.id)


@devices_cli.command("issue")
@click.argument("person_id", type=int)
@click.option("--label", help="e.g. the phone model")
def issue_device(person_id: int, label: str | None) -> None:
    """Issue a device token for a person; the last line printed is the token."""
    from .models import Person

    if db.session.get(Person, person_id) is None:
        raise click.BadParameter(f"no person with id {person_id}", param_hint="PERSON_ID")
    token = new_device_token()
    device = queries.add_device(db.session, person_id, label, hash_token(token))
    db.session.commit()
    link = f"{current_app.config['PUBLIC_URL']}/m#token={token}"
    click.echo(f"device {device.id} issued to person {person_id}")
    click.echo("pairing link (open it on the phone, or scan the code):")
    click.echo(link)
    click.echo(_terminal_qr(link))
    click.echo("the token is shown only once:")
    click.echo(token)


def _terminal_qr(text: str) -> str:
    """Return a QR code of `text` drawn with block characters for a terminal."""
    import qrcode

    qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    qr.add_data(text)
    out = io.StringIO()
    # Inverted so the code is dark on light in the usual light-on-dark terminal.
    qr.print_ascii(out=out, invert=True)
    return out.getvalue().rstrip("\n")


@devices_cli.command("revoke")
@click.argument("device_id", type=int)
def revoke_device(device_id: int) -> None:
    """Revoke a device: its token stops working at once."""
    if not queries.revoke_device(db.session, device_id):
        db.session.rollback()
        raise click.ClickException(f"no active device with id {device_id}")
    db.session.commit()
    click.echo(f"device {device_id} revoked")


def _read_password(password_stdin: bool) -> str:
    """Read a new password from standard input or an interactive prompt."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.BadParameter("must be at least 8 characters", param_hint="password")
    return password


@users_cli.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES))
@click.option("--unit", "unit_id", type=int, help="limit the account to this unit and below")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def add_user(username: str, role: str, unit_id: int | None, password_stdin: bool) -> None:
    """Add a command-centre staff account."""
    _check_unit(unit_id)
    if queries.user_by_username(db.session, username) is not None:
        raise click.ClickException(f"user {username} already exists")
    password = _read_password(password_stdin)
    queries.add_user(db.session, username, hash_password(password), role, unit_id)
    db.session.commit()
    click.echo(f"user {username} added ({role})")


@users_cli.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def set_password(username: str, password_stdin: bool) -> None:
    """Set a staff account's password."""
    user = queries.user_by_username(db.session, username)
    if user is None:
        raise click.ClickException(f"no user {username}")
    user.password_hash = hash_password(_read_password(password_stdin))
    db.session.commit()
    click.echo(f"password of {username} changed")


@partitions_cli.command("ensure")
@click.option("--days-ahead", type=int, default=None, help="default: PARTITION_DAYS_AHEAD")
def ensure_partitions(days_ahead: int | None) -> None:
    """Create the positions partitions from the ingest window up to some days ahead."""
    ahead = days_ahead if days_ahead is not None else current_app.config["PARTITION_DAYS_AHEAD"]
    back = current_app.config["MAX_AGE_S"] // 86400 + 1
    today = datetime.now(UTC).date()
    created = 0
    for n in range(-back, ahead + 1):
        created += queries.ensure_partition(db.session, today + timedelta(days=n))
    db.session.commit()
    click.echo(f"{created} partitions created")


@partitions_cli.command("prune")
@click.option(
    "--retention-days", type=click.IntRange(1), default=None, help="default: RETENTION_DAYS (90)"
)
def prune_partitions(retention_days: int | None) -> None:
    """Drop whole days of positions older than the retention; safe to run from cron.

    Latest positions, alerts and incidents are kept: only the track history goes.
    """
    days = retention_days or current_app.config["RETENTION_DAYS"]
    cutoff = datetime.now(UTC).date() - timedelta(days=days)
    if not queries.try_advisory_lock(db.session, "tracker_partition_prune"):
        click.echo("another prune is running; nothing done")
        return
    dropped = [day for day in sorted(queries.partition_days(db.session)) if day < cutoff]
    for day in dropped:
        queries.drop_partition(db.session, day)
    db.session.commit()
    click.echo(f"{len(dropped)} partitions older than {cutoff} dropped")


# A small demo around Beijing's Dongcheng district: two grids side by side.
DEMO_ORIGIN = (116.4105, 39.9280)  # lon, lat
DEMO_PEOPLE = [
    ("王芳 Wang Fang", "volunteer", 0),
    ("李强 Li Qiang", "street_chief", 0),
    ("张伟 Zhang Wei", "grid_worker", 0),
    ("刘洋 Liu Yang", "patrol", 1),
    ("陈静 Chen Jing", "volunteer", 1),
    ("赵磊 Zhao Lei", "grid_worker", 1),
]


def _grid_wkt(col: int) -> str:
    """Return the WKT square of demo grid `col` (about 600 m a side)."""
    lon0, lat0 = DEMO_ORIGIN
    w, h = 0.007, 0.0054
    x0 = lon0 + col * w
    return (
        f"POLYGON(({x0} {lat0}, {x0 + w} {lat0}, {x0 + w} {lat0 + h}, "
        f"{x0} {lat0 + h}, {x0} {lat0}))"
    )


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Create a demo admin, units, people, devices and a recent walk for each person."""
    if db.session.execute(select(Unit.id).limit(1)).first() is not None:
        click.echo("demo data already present: nothing to do")
        click.echo(
            "(the admin password was printed on the first run; reset it with "
            "`flask --app wsgi users passwd admin`)"
        )
        return
    district = queries.add_unit(db.session, "东城区 Dongcheng", "district", None, None)
    street = queries.add_unit(db.session, "景山街道 Jingshan", "street", district.id, None)
    community = queries.add_unit(db.session, "黄化门社区 Huanghuamen", "community", street.id, None)
    grids = [
        queries.add_unit(
            db.session, f"第{n + 1}网格 Grid {n + 1}", "grid", community.id, _grid_wkt(n)
        )
        for n in range(2)
    ]
    password = secrets.token_urlsafe(12)
    queries.add_user(db.session, "admin", hash_password(password), "admin", None)
    rng = random.Random(2026)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    tokens = []
    for name, role, grid in DEMO_PEOPLE:
        person = queries.add_person(db.session, name, role, grids[grid].id, None)
        token = new_device_token()
        device = queries.add_device(db.session, person.id, "demo phone", hash_token(token))
        tokens.append((name, token))
        queries.open_shift(db.session, person.id)
        lon = DEMO_ORIGIN[0] + (grid + rng.uniform(0.2, 0.8)) * 0.007
        lat = DEMO_ORIGIN[1] + rng.uniform(0.2, 0.8) * 0.0054
        heading = rng.uniform(0, 2 * math.pi)
        for step in range(120):  # ten minutes at one fix every five seconds
            heading += rng.gauss(0, 0.3)
            lon += 1.4 * 5 * math.sin(heading) / 85_000
            lat += 1.4 * 5 * math.cos(heading) / 111_000
            rows.append(
                queries.PositionRow(
                    person.id,
                    device.id,
                    now - timedelta(seconds=5 * (119 - step)),
                    lat,
                    lon,
                    accuracy_m=rng.uniform(3, 15),
                    speed_mps=1.4,
                    heading_deg=math.degrees(heading) % 360,
                    battery=rng.uniform(0.3, 1.0),
                )
            )
    for day in {row.ts.date() for row in rows}:
        queries.ensure_partition(db.session, day)
    queries.insert_positions(db.session, rows)
    db.session.commit()
    click.echo("demo data created:")
    for name, token in tokens:
        click.echo(f"  device token of {name}: {token}")
    click.echo(f"command-centre login: admin / {password}   (shown only now)")


@click.command("import-track")
@with_appcontext
@click.argument("person_id", type=int)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_track(person_id: int, path: Path) -> None:
    """Import a recorded track (GPX, GeoJSON or CSV) for a person, deduplicated."""
    from .ingest.tracks import TrackFileError, read_track
    from .ingest.validate import Limits, parse_batch
    from .models import Person

    if db.session.get(Person, person_id) is None:
        raise click.BadParameter(f"no person with id {person_id}", param_hint="PERSON_ID")
    try:
        items = read_track(path)
    except TrackFileError as exc:
        raise click.ClickException(str(exc)) from None
    if not items:
        raise click.ClickException(f"{path.name}: no points with positions")
    device_id = queries.import_device(db.session, person_id, hash_token(new_device_token()))
    limits = Limits(max_items=len(items), max_age=None, earliest=IMPORT_EARLIEST)
    fixes, rejections = parse_batch({"positions": items}, datetime.now(UTC), limits)
    stored = 0
    chunk = 2000
    with click.progressbar(length=len(fixes), label=f"importing {path.name}") as bar:
        for start in range(0, len(fixes), chunk):
            rows = [
                queries.PositionRow.from_fix(person_id, device_id, fix)
                for _, fix in fixes[start : start + chunk]
            ]
            for day in {row.ts.astimezone(UTC).date() for row in rows}:
                queries.ensure_partition(db.session, day)
            stored += len(queries.insert_positions(db.session, rows))
            db.session.commit()
            bar.update(len(rows))
    click.echo(
        f"{path.name}: {len(items)} points, {stored} stored, {len(fixes) - stored} duplicates, "
        f"{len(rejections)} rejected"
    )
    reasons = Counter(r.error for r in rejections)
    for reason, count in reasons.most_common():
        click.echo(f"  rejected {count} × {reason}")
    if rejections and not fixes:
        raise SystemExit(1)


SIM_ROLES = ("volunteer", "patrol", "grid_worker", "street_chief")


@click.command("simulate")
@click.option("--people", "count", type=click.IntRange(1, 100_000), default=10, show_default=True)
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=5.0,
    show_default=True,
    help="seconds between fixes of each phone",
)
@click.option(
    "--trace",
    "traces",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="GPX/CSV/GeoJSON trace to replay (repeatable)",
)
@click.option("--area", help="west,south,east,north: walk inside this box")
@click.option("--unit", "unit_id", type=int, help="walk inside the grids below this unit")
@click.option("--url", default=None, help="server to drive (default: PUBLIC_URL or :5000)")
@click.option("--duration", type=float, default=None, help="stop after this many seconds")
@click.option("--seed", type=int, default=1, show_default=True)
@with_appcontext
def simulate_command(count, interval, traces, area, unit_id, url, duration, seed) -> None:
    """Drive simulated phones through the real /device protocol (Ctrl-C stops)."""
    import asyncio

    from shapely import box
    from shapely.geometry import shape

    from .ingest.tracks import TrackFileError, read_track
    from .sim.runner import SimPhone, simulate, terminal_report
    from .sim.walks import PatrolWalk, TraceReplay, random_point_in

    rng = random.Random(seed)
    if area:
        try:
            west, south, east, north = (float(v) for v in area.split(","))
        except ValueError:
            raise click.BadParameter("must be west,south,east,north", param_hint="--area") from None
        areas = [(None, box(west, south, east, north))]
    else:
        grids = queries.grid_boundaries(db.session, unit_id)
        if not grids:
            raise click.UsageError("no grids with boundaries here: import some, or use --area")
        areas = [(g.id, shape(json.loads(g.geojson))) for g in grids]
    recorded = []
    for path in traces:
        try:
            items = read_track(path)
        except TrackFileError as exc:
            raise click.BadParameter(str(exc), param_hint="--trace") from None
        recorded.append([(i["lat"], i["lon"]) for i in items if "lat" in i and "lon" in i])
    people, movers = [], []
    for n in range(count):
        grid_id, grid_area = areas[n % len(areas)]
        name = f"模拟 Sim {n + 1:04d}"
        person = queries.person_by_name(db.session, name) or queries.add_person(
            db.session, name, SIM_ROLES[n % len(SIM_ROLES)], grid_id, None
        )
        if grid_id is not None:
            queries.assign_patrol_unit(db.session, person.id, grid_id)
        people.append(person.id)
        if recorded:
            lat, lon = random_point_in(grid_area, rng)
            movers.append(TraceReplay(recorded[n % len(recorded)], lat, lon))
        else:
            movers.append(PatrolWalk(grid_area, random.Random(rng.random())))
    queries.revoke_labelled_devices(db.session, people, "simulator")
    tokens = []
    for person_id in people:
        token = new_device_token()
        queries.add_device(db.session, person_id, "simulator", hash_token(token))
        tokens.append(token)
    db.session.commit()
    server = url or current_app.config.get("PUBLIC_URL") or "http://127.0.0.1:5000"
    phones = [
        SimPhone(server, token, mover, interval, random.Random(rng.random()))
        for token, mover in zip(tokens, movers, strict=True)
    ]
    click.echo(f"simulating {count} phones against {server}, a fix every {interval:g} s")
    try:
        stats = asyncio.run(simulate(phones, duration, terminal_report))
    except KeyboardInterrupt:
        click.echo("\nstopped")
        return
    click.echo(f"\n{stats.line()}")


def init_app(app: Flask) -> None:
    """Register the commands with the app's CLI."""
    for group in (units_cli, people_cli, devices_cli, users_cli, partitions_cli):
        app.cli.add_command(group)
    app.cli.add_command(seed_demo)
    app.cli.add_command(import_track)
    app.cli.add_command(simulate_command)
