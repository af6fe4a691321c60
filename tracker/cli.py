"""Administration commands: `flask --app wsgi units|people|devices|users|partitions|seed-demo`."""

from __future__ import annotations

import csv
import io
import json
import math
import random
import secrets
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError

from . import audit, roster, store
from .admin import devices as admin_devices
from .admin import people as admin_people
from .admin.rules import (
    PERSON_NAME_MAX_CHARS,
    AdminError,
    label_problem,
    password_problem,
    phone_problem,
    role_problem,
    username_problem,
)
from .auth import end_expired_sessions, hash_password, hash_token, new_device_token
from .extensions import db
from .geo import GeometryError, boundary_from_geojson
from .messages import Message, UserError, environment_translations, joined
from .models import STAFF_ROLES, Device, Person, Unit
from .privacy import erasure, retention
from .privacy import export as privacy_export
from .privacy.retention import RetentionDays
from .privacy.rules import (
    LEGAL_BASES,
    LEGAL_BASIS_NOTE_MAX_CHARS,
    TRACKING_POLICIES,
    parse_duty_hours,
    tracking_policy_problem,
)
from .zones.importer import (
    UNIT_NAME_MAX_CHARS,
    BoundaryImportError,
    kind_problem,
    name_problem,
    single_geometry,
)

# Recorded tracks older than this are taken for broken clocks (GPS week rollovers, 1901...).
IMPORT_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

units_cli = AppGroup("units", help="Districts, streets, communities and grids.")
people_cli = AppGroup("people", help="Volunteers, street chiefs, grid workers, patrols.")
devices_cli = AppGroup("devices", help="Phones and their tokens.")
users_cli = AppGroup("users", help="Command-centre staff accounts.")
partitions_cli = AppGroup("partitions", help="Upkeep of the positions partitions.")


# The rules for what operators type live in admin.rules (the API checks the same);
# each refusal names the argument and the rule.
TEXT_ENCODING_HINT = Message("save it as UTF-8")


class InputError(UserError, click.ClickException):
    """A value breaks a rule: printed as one line `Error: ARGUMENT: rule`, exit status 1.

    The line is in Chinese when the operator's environment asks for it (LC_ALL, LC_MESSAGES
    or LANG starting with zh); str() is English.
    """

    def __init__(self, argument: str, rule: str | Message | UserError, /, **params: Any) -> None:
        """Name the argument (`--name`, `PERSON_ID`) and the rule: a msgid template and params."""
        if isinstance(rule, str):
            rule = Message(rule, **params)
        # Extraction does not see this call: the msgid is in the catalogues by hand.
        UserError.__init__(self, "%(argument)s: %(rule)s", argument=argument, rule=rule)
        click.ClickException.__init__(self, str(self))

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the error (click calls this) in the language of the operator's environment."""
        text = Message("Error: %(problem)s", problem=self).localized(environment_translations())
        click.echo(text, file=file, err=file is None, color=self.show_color)


def _text(value: str, argument: str, max_chars: int) -> str:
    """Return a typed name or label without surrounding spaces, or refuse it naming the rule."""
    value = value.strip()
    if problem := name_problem(value, max_chars):
        raise InputError(argument, problem)
    return value


def _check_unit(unit_id: int | None, argument: str) -> None:
    """Refuse a unit id that does not exist, naming the argument it came from."""
    if unit_id is not None and db.session.get(Unit, unit_id) is None:
        raise InputError(argument, "no unit with id %(unit_id)s", unit_id=unit_id)


def _check_person(person_id: int) -> None:
    """Refuse a person id that does not exist."""
    if db.session.get(Person, person_id) is None:
        raise InputError("PERSON_ID", "no person with id %(person_id)s", person_id=person_id)


def _read_json(file: IO[str], argument: str) -> Any:
    """Return the decoded JSON of an opened file, or refuse it naming the file."""
    name = Path(file.name).name
    try:
        return json.load(file)
    except UnicodeDecodeError as exc:
        raise InputError(
            argument,
            "%(file)s: not UTF-8 text (byte offset %(offset)s); %(hint)s",
            file=name,
            offset=exc.start,
            hint=TEXT_ENCODING_HINT,
        ) from None
    except RecursionError:
        raise InputError(argument, "%(file)s: nested too deeply to be GeoJSON", file=name) from None
    except ValueError as exc:
        raise InputError(
            argument, "%(file)s: not valid JSON (%(detail)s)", file=name, detail=exc
        ) from None


def _read_boundary(file: IO[str]) -> str:
    """Return the WKT of a --boundary file's polygon, repaired if invalid, or refuse it."""
    name = Path(file.name).name
    doc = _read_json(file, "--boundary")
    try:
        geom, repaired = boundary_from_geojson(single_geometry(name, doc))
    except BoundaryImportError as exc:
        raise InputError("--boundary", exc) from None
    except GeometryError as exc:
        raise InputError("--boundary", "%(file)s: %(problem)s", file=name, problem=exc) from None
    if repaired:
        click.echo("boundary was invalid and has been repaired", err=True)
    return geom.wkt


@units_cli.command("add")
@click.argument("name")
@click.option("--kind", required=True, help="district, street, community or grid")
@click.option("--parent", "parent_id", type=int, help="id of the unit above this one")
@click.option("--boundary", type=click.File("r", encoding="utf-8-sig"), help="GeoJSON polygon file")
def add_unit(name: str, kind: str, parent_id: int | None, boundary: IO[str] | None) -> None:
    """Add a unit; print its id."""
    name = _text(name, "NAME", UNIT_NAME_MAX_CHARS)
    if problem := kind_problem(kind):
        raise InputError("--kind", problem)
    _check_unit(parent_id, "--parent")
    wkt = _read_boundary(boundary) if boundary is not None else None
    try:
        unit = store.people.add_unit(db.session, name, kind, parent_id, wkt)
    except IntegrityError as exc:
        db.session.rollback()
        if getattr(exc.orig.diag, "constraint_name", None) != "ux_units_parent_kind_name":
            raise
        if parent_id is None:
            raise InputError(
                "NAME",
                "a %(kind)s named %(name)r already exists without a parent "
                "(`units import` updates boundaries)",
                kind=kind,
                name=name,
            ) from None
        raise InputError(
            "NAME",
            "a %(kind)s named %(name)r already exists under unit %(parent_id)s "
            "(`units import` updates boundaries)",
            kind=kind,
            name=name,
            parent_id=parent_id,
        ) from None
    after = {"name": name, "kind": kind, "parent_id": parent_id}
    if wkt is not None:
        after["boundary"] = json.loads(
            store.zones.unit_boundary_geojson(db.session, unit.id) or "null"
        )
    audit.record("unit.create", "unit", unit.id, None, after)
    db.session.commit()
    click.echo(unit.id)


@units_cli.command("import")
@click.argument("geojson", type=click.File("r", encoding="utf-8-sig"))
def import_units_command(geojson: IO[str]) -> None:
    """Create or update units from a GeoJSON FeatureCollection (name, kind, parent)."""
    from .zones.importer import import_units

    doc = _read_json(geojson, "GEOJSON")
    try:
        report = import_units(db.session, doc)
    except BoundaryImportError as exc:
        db.session.rollback()
        name = Path(geojson.name).name
        raise InputError(
            "GEOJSON", "%(file)s: nothing imported: %(error)s", file=name, error=exc
        ) from None
    db.session.commit()
    click.echo(f"{len(report.created)} units created, {len(report.updated)} updated")
    for line in report.repaired:
        click.echo(f"  repaired {line}")


@people_cli.command("assign")
@click.argument("person_id", type=int)
@click.option("--grid", "grid_id", type=int, help="the grid to patrol; omit to clear")
def assign_person(person_id: int, grid_id: int | None) -> None:
    """Assign a person to the grid they patrol (their zone)."""
    _check_person(person_id)
    _check_unit(grid_id, "--grid")
    before = {"patrol_unit_id": db.session.get(Person, person_id).patrol_unit_id}
    store.people.assign_patrol_unit(db.session, person_id, grid_id)
    audit.record("person.update", "person", person_id, before, {"patrol_unit_id": grid_id})
    db.session.commit()
    click.echo(f"person {person_id} patrols {'grid ' + str(grid_id) if grid_id else 'no grid'}")


@people_cli.command("add")
@click.option("--name", required=True)
@click.option("--role", required=True, help="volunteer, street_chief, grid_worker, patrol, ...")
@click.option("--unit", "unit_id", type=int)
@click.option("--phone", help="digits, spaces, + and -; at most 32 characters")
def add_person(name: str, role: str, unit_id: int | None, phone: str | None) -> None:
    """Add a person; print their id."""
    name = _text(name, "--name", PERSON_NAME_MAX_CHARS)
    if problem := role_problem(role, current_app.config["PERSON_ROLES"]):
        raise InputError("--role", problem)
    _check_unit(unit_id, "--unit")
    if phone is not None:
        phone = phone.strip()
        if problem := phone_problem(phone):
            raise InputError("--phone", problem)
    values = {"name": name, "role": role, "unit_id": unit_id, "phone": phone}
    try:
        person = admin_people.add(values)
    except AdminError as exc:  # the number belongs to someone else
        db.session.rollback()
        raise InputError(
            "--phone",
            "%(phone)s belongs to person %(person_id)s",
            phone=phone,
            person_id=exc.params.get("person_id"),
        ) from None
    db.session.commit()
    click.echo(person.id)


@devices_cli.command("issue")
@click.argument("person_id", type=int)
@click.option("--label", help="e.g. the phone model (at most 100 characters)")
def issue_device(person_id: int, label: str | None) -> None:
    """Issue a device token for a person; the last line printed is the token."""
    _check_person(person_id)
    if label is not None:
        label = label.strip()
        if problem := label_problem(label):
            raise InputError("--label", problem)
    device, token = admin_devices.issue(person_id, label)
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
    """Revoke a device: its token stops working at once; the last phone ends the shift."""
    device = db.session.get(Device, device_id)
    if device is None:
        raise InputError("DEVICE_ID", "no device with id %(device_id)s", device_id=device_id)
    if not roster.revoke_device(device):
        raise InputError(
            "DEVICE_ID", "device %(device_id)s is already revoked", device_id=device_id
        )
    click.echo(f"device {device_id} revoked")


@people_cli.command("deactivate")
@click.argument("person_id", type=int)
def deactivate_person(person_id: int) -> None:
    """Deactivate a person: their phones are refused and their shift ends."""
    _check_person(person_id)
    if not roster.set_person_active(person_id, False):
        raise InputError(
            "PERSON_ID", "person %(person_id)s is already inactive", person_id=person_id
        )
    click.echo(f"person {person_id} deactivated")


@people_cli.command("reactivate")
@click.argument("person_id", type=int)
def reactivate_person(person_id: int) -> None:
    """Reactivate a person; their devices that were not revoked work again."""
    _check_person(person_id)
    if not roster.set_person_active(person_id, True):
        raise InputError("PERSON_ID", "person %(person_id)s is already active", person_id=person_id)
    click.echo(f"person {person_id} reactivated")


@people_cli.command("export")
@click.argument("person_id", type=int)
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    default=Path("."),
    help="the folder for person-ID.json and person-ID.gpx (default: here)",
)
def export_person(person_id: int, folder: Path) -> None:
    """Write everything stored about a person as JSON, and their fixes as GPX."""
    _check_person(person_id)
    audit.record_read("person.export_json", "person", person_id)
    document = privacy_export.person_export(db.session, person_id)
    gpx = privacy_export.person_gpx(db.session, person_id)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, gpx_path = folder / f"person-{person_id}.json", folder / f"person-{person_id}.gpx"
    json_path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    gpx_path.write_text(gpx or "", encoding="utf-8")
    positions = len(document["positions"]) if document else 0
    click.echo(f"{positions} positions of person {person_id} written to {json_path} and {gpx_path}")


@people_cli.command("erase")
@click.argument("person_id", type=int)
@click.option("--yes", is_flag=True, help="confirm: this cannot be undone")
def erase_person(person_id: int, yes: bool) -> None:
    """Erase a person: delete their positions, alerts and phones; pseudonymise their name."""
    _check_person(person_id)
    if not yes:
        raise InputError("--yes", "erasure cannot be undone; repeat the command with --yes")
    counts = erasure.erase(db.session, person_id)
    db.session.commit()
    click.echo(f"person {person_id} erased: {counts}")


@people_cli.command("legal-basis")
@click.argument("person_id", type=int)
@click.argument("basis", type=click.Choice(LEGAL_BASES))
@click.option("--note", default=None, help="what it rests on (a form's number, a roster)")
def set_legal_basis(person_id: int, basis: str, note: str | None) -> None:
    """Record the legal basis of tracking a person (PIPL art. 13), dated now."""
    _check_person(person_id)
    if note is not None and len(note) > LEGAL_BASIS_NOTE_MAX_CHARS:
        raise InputError("--note", "at most %(max)s characters", max=LEGAL_BASIS_NOTE_MAX_CHARS)
    changed = store.privacy.set_legal_basis(db.session, person_id, basis, note, None)
    assert changed is not None
    audit.record("person.legal_basis", "person", person_id, *changed)
    db.session.commit()
    click.echo(f"person {person_id}: legal basis {basis}")


@units_cli.command("tracking-policy")
@click.argument("unit_id", type=int)
@click.argument("policy", type=click.Choice((*TRACKING_POLICIES, "inherit")))
@click.option("--duty-hours", default=None, help="HH:MM-HH:MM, local time (for duty_hours)")
@click.option(
    "--live-off-duty/--no-live-off-duty",
    default=None,
    help="whether the live map shows the unit's off-duty people (default: inherit)",
)
def set_tracking_policy(
    unit_id: int, policy: str, duty_hours: str | None, live_off_duty: bool | None
) -> None:
    """Set when a unit's people's fixes are kept: always, on_duty, duty_hours or inherit."""
    _check_unit(unit_id, "UNIT_ID")
    hours = None
    if duty_hours is not None:
        parsed = parse_duty_hours(duty_hours)
        if not isinstance(parsed, tuple):
            raise InputError("--duty-hours", parsed)
        hours = parsed
    tracking = None if policy == "inherit" else policy
    if problem := tracking_policy_problem(tracking, hours):
        raise InputError("--duty-hours", problem)
    start, end = hours if hours and tracking == "duty_hours" else (None, None)
    changed = store.privacy.set_unit_policy(
        db.session, unit_id, tracking, start, end, live_off_duty
    )
    assert changed is not None
    audit.record("unit.tracking_policy", "unit", unit_id, *changed)
    db.session.commit()
    click.echo(f"unit {unit_id}: {changed[1]}")


def _read_password(password_stdin: bool) -> str:
    """Read a new password from standard input or an interactive prompt."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if problem := password_problem(password):
        raise InputError("password", problem)
    return password


@users_cli.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES))
@click.option("--unit", "unit_id", type=int, help="limit the account to this unit and below")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def add_user(username: str, role: str, unit_id: int | None, password_stdin: bool) -> None:
    """Add a command-centre staff account."""
    if problem := username_problem(username):
        raise InputError("USERNAME", problem)
    _check_unit(unit_id, "--unit")
    exists = Message("a staff account named %(username)r already exists", username=username)
    if store.accounts.user_by_username(db.session, username) is not None:
        raise InputError("USERNAME", exists)
    password = _read_password(password_stdin)
    try:
        added = store.accounts.add_user(
            db.session, username, hash_password(password), role, unit_id
        )
    except IntegrityError:
        db.session.rollback()  # added by someone else meanwhile
        raise InputError("USERNAME", exists) from None
    after = {"username": username, "role": role, "unit_id": unit_id}
    audit.record("user.create", "user", added.id, None, after)
    db.session.commit()
    click.echo(f"user {username} added ({role})")


@users_cli.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def set_password(username: str, password_stdin: bool) -> None:
    """Set a staff account's password; its open sessions end."""
    user = _staff_account(username)
    user.password_hash = hash_password(_read_password(password_stdin))
    ended = store.accounts.end_user_sessions(db.session, user.id, "password")
    audit.record("user.update", "user", user.id, {}, {"password_changed": True})
    db.session.commit()
    click.echo(f"password of {username} changed; {ended} open sessions ended")


def _staff_account(username: str) -> Any:
    """Return the staff account named `username`, or fail naming the argument."""
    user = store.accounts.user_by_username(db.session, username)
    if user is None:
        raise InputError("USERNAME", "no staff account named %(username)r", username=username)
    return user


@users_cli.command("disable")
@click.argument("username")
def disable_user(username: str) -> None:
    """Disable a staff account: it cannot log in, and its open sessions end at once."""
    user = _staff_account(username)
    audit.record("user.update", "user", user.id, {"active": user.active}, {"active": False})
    user.active = False
    ended = store.accounts.end_user_sessions(db.session, user.id, "disabled")
    db.session.commit()
    click.echo(f"user {username} disabled; {ended} open sessions ended")


@users_cli.command("enable")
@click.argument("username")
def enable_user(username: str) -> None:
    """Let a disabled staff account log in again (its old sessions stay ended)."""
    user = _staff_account(username)
    audit.record("user.update", "user", user.id, {"active": user.active}, {"active": True})
    user.active = True
    db.session.commit()
    click.echo(f"user {username} enabled")


@users_cli.command("end-sessions")
@click.argument("username")
def end_user_sessions(username: str) -> None:
    """End every open session of a staff account (a lost laptop, a shared password)."""
    user = _staff_account(username)
    ended = store.accounts.end_user_sessions(db.session, user.id, "ended_by_cli")
    audit.record("session.end_all", "session", user.id, None, {"ended": ended})
    db.session.commit()
    click.echo(f"{ended} open sessions of {username} ended")


@partitions_cli.command("ensure")
@click.option(
    "--days-ahead", type=click.IntRange(0, 366), default=None, help="default: PARTITION_DAYS_AHEAD"
)
def ensure_partitions(days_ahead: int | None) -> None:
    """Create the positions partitions from the ingest window up to some days ahead."""
    ahead = days_ahead if days_ahead is not None else current_app.config["PARTITION_DAYS_AHEAD"]
    back = current_app.config["MAX_AGE_S"] // 86400 + 1
    today = datetime.now(UTC).date()
    created = 0
    for n in range(-back, ahead + 1):
        created += store.positions.ensure_partition(db.session, today + timedelta(days=n))
    db.session.commit()
    click.echo(f"{created} partitions created")


@partitions_cli.command("prune")
@click.option(
    "--retention-days",
    type=click.IntRange(1, 36_600),
    default=None,
    help="positions; default: RETENTION_DAYS (90)",
)
@click.option(
    "--alerts-days",
    type=click.IntRange(1, 36_600),
    default=None,
    help="default: RETENTION_ALERTS_DAYS (365)",
)
@click.option(
    "--incidents-days",
    type=click.IntRange(1, 36_600),
    default=None,
    help="default: RETENTION_INCIDENTS_DAYS (365)",
)
@click.option(
    "--audit-days",
    type=click.IntRange(1, 36_600),
    default=None,
    help="default: RETENTION_AUDIT_DAYS (1096)",
)
@click.option(
    "--now",
    "now_text",
    default=None,
    metavar="ISO-TIME",
    help="prune as if it were this time (with a UTC offset); default: now",
)
def prune_partitions(
    retention_days: int | None,
    alerts_days: int | None,
    incidents_days: int | None,
    audit_days: int | None,
    now_text: str | None,
) -> None:
    """Drop each class of data older than its retention; safe to run from cron.

    Whole days of positions, alerts, ended incidents and audit rows (docs/privacy.md);
    latest positions and people are kept.
    """
    days = RetentionDays.from_config(
        current_app.config,
        positions=retention_days,
        alerts=alerts_days,
        incidents=incidents_days,
        audit=audit_days,
    )
    now = datetime.now(UTC)
    if now_text is not None:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError:
            raise InputError("--now", "must be an ISO-8601 date-time") from None
        if now.tzinfo is None:
            raise InputError("--now", "must include a UTC offset") from None
    if not store.zones.try_advisory_lock(db.session, "tracker_partition_prune"):
        click.echo("another prune is running; nothing done")
        return
    pruned = retention.prune(db.session, now, days)
    audit.record("retention.prune", "retention", None, None, pruned.as_dict())
    db.session.commit()
    expired = end_expired_sessions()
    cutoff = pruned.positions_before
    click.echo(f"{len(pruned.position_days)} partitions older than {cutoff} dropped")
    click.echo(
        f"{pruned.alerts} alerts, {pruned.incidents} incidents and "
        f"{pruned.audit_events} audit rows past their retention deleted"
    )
    click.echo(f"{expired} staff logins past their age ended")


reports_cli = AppGroup("reports", help="Patrol reports and assessment (docs/reports.md).")


@reports_cli.command("daily")
@click.option("--date", "day", default=None, help="YYYY-MM-DD; default: yesterday")
def daily_reports_command(day: str | None) -> None:
    """Write a day's XLSX report of every district and street into REPORTS_DIR; cron-safe."""
    from .assessment.daily import write_daily_reports

    config = current_app.config
    if day is None:
        chosen = datetime.now(ZoneInfo(config["HISTORY_TIME_ZONE"])).date() - timedelta(days=1)
    else:
        try:
            chosen = date.fromisoformat(day)
        except ValueError:
            raise InputError("--date", "must be a date YYYY-MM-DD") from None
    written = write_daily_reports(db.session, chosen, config, config["REPORTS_DAILY_KINDS"])
    if written is None:
        click.echo("another daily report run is writing; nothing done")
        return
    click.echo(f"{len(written)} daily reports for {chosen} written to {config['REPORTS_DIR']}")


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
    district = store.people.add_unit(db.session, "东城区 Dongcheng", "district", None, None)
    street = store.people.add_unit(db.session, "景山街道 Jingshan", "street", district.id, None)
    community = store.people.add_unit(
        db.session, "黄化门社区 Huanghuamen", "community", street.id, None
    )
    grids = [
        store.people.add_unit(
            db.session, f"第{n + 1}网格 Grid {n + 1}", "grid", community.id, _grid_wkt(n)
        )
        for n in range(2)
    ]
    password = secrets.token_urlsafe(12)
    store.accounts.add_user(db.session, "admin", hash_password(password), "admin", None)
    rng = random.Random(2026)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    tokens = []
    for name, role, grid in DEMO_PEOPLE:
        person = store.people.add_person(db.session, name, role, grids[grid].id, None)
        token = new_device_token()
        device = store.devices.add_device(db.session, person.id, "demo phone", hash_token(token))
        tokens.append((name, token))
        store.people.open_shift(db.session, person.id)
        lon = DEMO_ORIGIN[0] + (grid + rng.uniform(0.2, 0.8)) * 0.007
        lat = DEMO_ORIGIN[1] + rng.uniform(0.2, 0.8) * 0.0054
        heading = rng.uniform(0, 2 * math.pi)
        for step in range(120):  # ten minutes at one fix every five seconds
            heading += rng.gauss(0, 0.3)
            lon += 1.4 * 5 * math.sin(heading) / 85_000
            lat += 1.4 * 5 * math.cos(heading) / 111_000
            rows.append(
                store.positions.PositionRow(
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
        store.positions.ensure_partition(db.session, day)
    store.positions.insert_positions(db.session, rows)
    db.session.commit()
    click.echo("demo data created:")
    for name, token in tokens:
        click.echo(f"  device token of {name}: {token}")
    click.echo(f"command-centre login: admin / {password}   (shown only now)")


def _track_text_problem(raw: bytes) -> Message | None:
    """Return why a track file's bytes are not UTF-8 text, or None if they are."""
    if b"\0" in raw:
        offset = raw.index(b"\0")
        line = raw.count(b"\n", 0, offset) + 1
        return Message(
            "binary content (a NUL byte on line %(line)s): not a UTF-8 text track file", line=line
        )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return Message(
            "not UTF-8 text (byte 0x%(byte)02x on line %(line)s); %(hint)s",
            byte=raw[exc.start],
            line=line,
            hint=TEXT_ENCODING_HINT,
        )
    return None


def _csv_error_line(text: str) -> int:
    """Return the line on which Python's CSV reader stops reading a text."""
    reader = csv.reader(io.StringIO(text))
    try:
        for _ in reader:
            pass
    except csv.Error:
        pass
    return reader.line_num


def _geojson_track_problem(text: str) -> Message:
    """Return the first feature of a GeoJSON track that the reader cannot take, named."""
    doc = json.loads(text)  # the reader has decoded it once already
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        return Message("geojson: features must be a list of Point features")
    for index, feature in enumerate(features):
        if not isinstance(feature, dict):
            return Message("geojson: features[%(index)s] must be a Feature", index=index)
        geometry, props = feature.get("geometry"), feature.get("properties")
        if props is not None and not isinstance(props, dict):
            return Message("geojson: features[%(index)s].properties must be an object", index=index)
        if not isinstance(geometry, dict):
            return Message("geojson: features[%(index)s].geometry must be a Point", index=index)
        coordinates = geometry.get("coordinates")
        if not isinstance(coordinates, list) or len(coordinates) < 2:
            return Message(
                "geojson: features[%(index)s].geometry.coordinates must be [lon, lat]",
                index=index,
            )
    return Message("geojson: a feature is malformed")


def _read_track_file(path: Path, argument: str) -> list[dict[str, Any]]:
    """Return the position items of a track file, or refuse it naming the file, line and rule."""
    from .ingest.tracks import TrackFileError, read_track

    raw = path.read_bytes()
    if problem := _track_text_problem(raw):
        raise InputError(argument, "%(file)s: %(problem)s", file=path.name, problem=problem)
    try:
        items = read_track(path)
    except TrackFileError as exc:
        message = str(exc).removeprefix(f"{path.name}: ")
        raise InputError(
            argument, "%(file)s: %(problem)s", file=path.name, problem=message
        ) from None
    except csv.Error as exc:
        text = raw.decode("utf-8-sig")
        raise InputError(
            argument,
            "%(file)s: csv: line %(line)s: %(detail)s",
            file=path.name,
            line=_csv_error_line(text),
            detail=exc,
        ) from None
    except RecursionError:
        raise InputError(
            argument, "%(file)s: nested too deeply to be a track", file=path.name
        ) from None
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        # tracks.py trips over content it does not expect; for GeoJSON, say which feature.
        if path.suffix.lower() in {".geojson", ".json"}:
            problem = _geojson_track_problem(raw.decode("utf-8-sig"))
        else:
            problem = Message(
                "unreadable (%(error_type)s: %(detail)s)",
                error_type=type(exc).__name__,
                detail=exc,
            )
        raise InputError(
            argument, "%(file)s: %(problem)s", file=path.name, problem=problem
        ) from None
    if not items:
        raise InputError(argument, "%(file)s: no points with positions", file=path.name)
    return items


def _point_locator(path: Path, raw_text: str) -> Callable[[int], Message | str]:
    """Return a function that names the place in the file of the item at an index."""
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(raw_text))
        lines = [reader.line_num for _ in reader]
        return lambda index: (
            Message("line %(line)s", line=lines[index])
            if index < len(lines)
            else Message("row %(row)s", row=index + 1)
        )
    if path.suffix.lower() in {".geojson", ".json"}:
        return lambda index: f"features[{index}]"
    return lambda index: Message("point %(number)s", number=index + 1)


@click.command("import-track")
@with_appcontext
@click.argument("person_id", type=int)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_track(person_id: int, path: Path) -> None:
    """Import a recorded track (GPX, GeoJSON or CSV) for a person, deduplicated.

    Points that break a rule are counted and skipped; the others are stored in one
    transaction, so a failure stores nothing.
    """
    from .ingest.validate import Limits, parse_batch

    _check_person(person_id)
    items = _read_track_file(path, "PATH")
    limits = Limits(max_items=len(items), max_age=None, earliest=IMPORT_EARLIEST)
    fixes, rejections = parse_batch({"positions": items}, datetime.now(UTC), limits)
    reasons: list[Message] = []
    if rejections:
        locate = _point_locator(path, path.read_text(encoding="utf-8-sig"))
        first: dict[str, int] = {}
        for rejection in rejections:
            first.setdefault(rejection.error, rejection.index)
        counts = Counter(r.error for r in rejections)
        reasons = [
            Message(
                "rejected %(count)s × %(reason)s (first at %(place)s)",
                count=count,
                reason=reason,
                place=locate(first[reason]),
            )
            for reason, count in counts.most_common()
        ]
    if not fixes:
        raise InputError(
            "PATH",
            "%(file)s: nothing to store: %(reasons)s",
            file=path.name,
            reasons=joined(reasons),
        )
    try:
        stored = _store_track(person_id, path, fixes)
    except DBAPIError as exc:
        db.session.rollback()
        problem = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise InputError(
            "PATH", "%(file)s: nothing stored: %(problem)s", file=path.name, problem=problem
        ) from None
    click.echo(
        f"{path.name}: {len(items)} points, {stored} stored, {len(fixes) - stored} duplicates, "
        f"{len(rejections)} rejected"
    )
    for line in reasons:
        click.echo(f"  {line}")


def _store_track(person_id: int, path: Path, fixes: list[tuple[int, Any]]) -> int:
    """Store a track's fixes in one transaction; return how many were new."""
    device_id = store.devices.import_device(db.session, person_id, hash_token(new_device_token()))
    stored = 0
    chunk = 2000
    with click.progressbar(length=len(fixes), label=f"importing {path.name}") as bar:
        for start in range(0, len(fixes), chunk):
            rows = [
                store.positions.PositionRow.from_fix(person_id, device_id, fix)
                for _, fix in fixes[start : start + chunk]
            ]
            for day in {row.ts.astimezone(UTC).date() for row in rows}:
                store.positions.ensure_partition(db.session, day)
            stored += len(store.positions.insert_positions(db.session, rows))
            bar.update(len(rows))
    db.session.commit()
    return stored


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
@click.option(
    "--duration",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="stop after this many seconds",
)
@click.option("--seed", type=int, default=1, show_default=True)
@with_appcontext
def simulate_command(count, interval, traces, area, unit_id, url, duration, seed) -> None:
    """Drive simulated phones through the real /device protocol (Ctrl-C stops)."""
    import asyncio

    from shapely import box
    from shapely.geometry import shape

    from .sim.runner import SimPhone, simulate, terminal_report
    from .sim.walks import PatrolWalk, TraceReplay, random_point_in

    rng = random.Random(seed)
    if url is not None and not url.startswith(("http://", "https://")):
        raise InputError("--url", "must start with http:// or https://, got %(url)r", url=url)
    if area:
        west, south, east, north = _parse_area(area)
        areas = [(None, box(west, south, east, north))]
    else:
        _check_unit(unit_id, "--unit")
        grids = store.zones.grid_boundaries(db.session, unit_id)
        if not grids and unit_id is None:
            raise InputError(
                "--area", "no grids with boundaries at all: import some, or give --area"
            )
        if not grids:
            raise InputError(
                "--unit",
                "no grids with boundaries below unit %(unit_id)s: import some, or give --area",
                unit_id=unit_id,
            )
        areas = [(g.id, shape(json.loads(g.geojson))) for g in grids]
    recorded = []
    for path in traces:
        points = [
            (i["lat"], i["lon"])
            for i in _read_track_file(path, "--trace")
            if _is_lat_lon(i.get("lat"), i.get("lon"))
        ]
        if not points:
            raise InputError(
                "--trace", "%(file)s: no points with valid lat and lon", file=path.name
            )
        recorded.append(points)
    people, movers = [], []
    for n in range(count):
        grid_id, grid_area = areas[n % len(areas)]
        name = f"模拟 Sim {n + 1:04d}"
        person = store.people.person_by_name(db.session, name) or store.people.add_person(
            db.session, name, SIM_ROLES[n % len(SIM_ROLES)], grid_id, None
        )
        if grid_id is not None:
            store.people.assign_patrol_unit(db.session, person.id, grid_id)
        people.append(person.id)
        if recorded:
            lat, lon = random_point_in(grid_area, rng)
            movers.append(TraceReplay(recorded[n % len(recorded)], lat, lon))
        else:
            movers.append(PatrolWalk(grid_area, random.Random(rng.random())))
    store.devices.revoke_labelled_devices(db.session, people, "simulator")
    tokens = []
    for person_id in people:
        token = new_device_token()
        store.devices.add_device(db.session, person_id, "simulator", hash_token(token))
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


def _is_lat_lon(lat: Any, lon: Any) -> bool:
    """Return whether lat and lon are numbers within WGS-84 range (NaN is not)."""
    numbers = all(type(v) in (int, float) for v in (lat, lon))
    return numbers and -90 <= lat <= 90 and -180 <= lon <= 180


def _parse_area(area: str) -> tuple[float, float, float, float]:
    """Return --area's west, south, east, north, or refuse it naming the rule."""
    try:
        west, south, east, north = (float(v) for v in area.split(","))
    except ValueError:
        raise InputError("--area", "must be four numbers west,south,east,north") from None
    if not (-180 <= west < east <= 180):
        raise InputError("--area", "west and east must be longitudes, -180 <= west < east <= 180")
    if not (-90 <= south < north <= 90):
        raise InputError("--area", "south and north must be latitudes, -90 <= south < north <= 90")
    return west, south, east, north


def init_app(app: Flask) -> None:
    """Register the commands with the app's CLI."""
    for group in (units_cli, people_cli, devices_cli, users_cli, partitions_cli, reports_cli):
        app.cli.add_command(group)
    app.cli.add_command(seed_demo)
    app.cli.add_command(import_track)
    app.cli.add_command(simulate_command)
