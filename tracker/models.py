"""Tables, with typed columns."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from flask_login import UserMixin
from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    REAL,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db

STAFF_ROLES = ("admin", "dispatcher", "viewer")


class Unit(db.Model):
    """A district, street (街道), community (社区) or grid (网格)."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    boundary: Mapped[WKBElement | None] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True
    )
    # When its people's fixes are kept (docs/privacy.md): `on_duty`, `duty_hours`
    # (duty_start to duty_end, local time) or `always`; NULL inherits the parent's, and at
    # the top TRACKING_POLICY.
    tracking_policy: Mapped[str | None] = mapped_column(String(16))
    duty_start: Mapped[time | None] = mapped_column(Time)
    duty_end: Mapped[time | None] = mapped_column(Time)
    # Whether the live map shows its off-duty people; NULL inherits (at the top: no).
    live_shows_off_duty: Mapped[bool | None] = mapped_column()

    __table_args__ = (
        CheckConstraint(
            "tracking_policy IN ('always', 'on_duty', 'duty_hours')",
            name="ck_units_tracking_policy",
        ),
        CheckConstraint(
            "tracking_policy IS DISTINCT FROM 'duty_hours' "
            "OR (duty_start IS NOT NULL AND duty_end IS NOT NULL)",
            name="ck_units_duty_hours",
        ),
        Index("ix_units_parent_id", "parent_id"),
        Index("ix_units_boundary", "boundary", postgresql_using="gist"),
        # Re-importing a boundary file updates units instead of duplicating them.
        Index(
            "ux_units_parent_kind_name",
            "parent_id",
            "kind",
            "name",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )


class Person(db.Model):
    """Someone who carries a tracked phone: volunteer, street chief, grid worker, patrol."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    # The grid this person patrols; leaving it raises zone_exit while on duty.
    patrol_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The legal basis of tracking this person (PIPL art. 13), when and by what it was
    # recorded (docs/privacy.md).
    legal_basis: Mapped[str | None] = mapped_column(String(32))
    legal_basis_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    legal_basis_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "legal_basis IN ('consent', 'contract', 'hr_management', 'legal_duty', "
            "'emergency', 'public_interest')",
            name="ck_people_legal_basis",
        ),
        Index("ix_people_unit_id", "unit_id"),
        Index("ix_people_patrol_unit_id", "patrol_unit_id"),
    )


class Device(db.Model):
    """A phone or app paired to a person; only the SHA-256 of its token is kept."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    label: Mapped[str | None] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What last reported with this token: `webapp` (our phone app, which receives tasks
    # over its socket) or a GPS app (`osmand`, `owntracks`, `overland`, `api`), which cannot.
    client: Mapped[str | None] = mapped_column(String(16))
    # The last time a socket of this device was connected (refreshed while it stays).
    last_socket_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_devices_person_id", "person_id"),)


class Position(db.Model):
    """One GPS fix, stored once per (device, ts); range-partitioned by day on ts."""

    __tablename__ = "positions"

    person_id: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[int] = mapped_column(Integer)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    accuracy_m: Mapped[float | None] = mapped_column(REAL)
    altitude_m: Mapped[float | None] = mapped_column(REAL)
    speed_mps: Mapped[float | None] = mapped_column(REAL)
    heading_deg: Mapped[float | None] = mapped_column(REAL)
    battery: Mapped[float | None] = mapped_column(REAL)

    # (person_id, ts, device_id) is the identity of a fix (a device belongs to one person,
    # so it equals (device, ts)); leading with person_id, ts makes the same btree serve
    # track queries, and keeps person_id in the key for a Citus distribution by person.
    __table_args__ = (
        PrimaryKeyConstraint("person_id", "ts", "device_id", name="pk_positions"),
        Index("ix_positions_ts_brin", "ts", postgresql_using="brin"),
        Index("ix_positions_geom", "geom", postgresql_using="gist"),
        {"postgresql_partition_by": "RANGE (ts)"},
    )


class LatestPosition(db.Model):
    """The newest fix of each person; a hot table updated in place."""

    __tablename__ = "latest_positions"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[int] = mapped_column(Integer)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    accuracy_m: Mapped[float | None] = mapped_column(REAL)
    altitude_m: Mapped[float | None] = mapped_column(REAL)
    speed_mps: Mapped[float | None] = mapped_column(REAL)
    heading_deg: Mapped[float | None] = mapped_column(REAL)
    battery: Mapped[float | None] = mapped_column(REAL)
    # The grid that contains the fix, matched after each commit (no FK: a hot table).
    grid_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_latest_positions_geom", "geom", postgresql_using="gist"),
        # Nearest-people searches order by true (geodesic) distance with this index.
        Index(
            "ix_latest_positions_geog",
            func.geography(text("geom")),
            postgresql_using="gist",
        ),
        {
            # Updates rewrite the row; free space on the page lets PostgreSQL keep the new
            # version on the same page, and aggressive autovacuum reclaims dead entries in
            # the GiST index before they pile up (bench/latest_bloat.py measures it).
            "postgresql_with": {
                "fillfactor": "50",
                "autovacuum_vacuum_scale_factor": "0",
                "autovacuum_vacuum_threshold": "5000",
                "autovacuum_vacuum_cost_delay": "0",
                "autovacuum_analyze_scale_factor": "0.05",
            }
        },
    )


class Shift(db.Model):
    """An on-duty period of a person; ended_at is NULL while on duty."""

    __tablename__ = "shifts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Why it ended: `phone` (off duty on the phone), `staff` (ended on /admin), `revoked`,
    # `deactivated`, `silent` (no fix and no connection for SHIFT_IDLE_CLOSE_S); NULL while
    # open.
    end_reason: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_shifts_person_started", "person_id", "started_at"),
        # At most one open shift per person.
        Index(
            "ux_shifts_open",
            "person_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
        # The shifts ended lately, re-read by every process (tracker.privacy.policy).
        Index("ix_shifts_ended_at", "ended_at", postgresql_where=text("ended_at IS NOT NULL")),
    )


class User(UserMixin, db.Model):
    """A command-centre staff account; sees its unit and the units below it."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The map's basemap and layer opacities this account chose ({"basemap", "grid_opacity",
    # "unit_opacity"}); NULL until it chooses (tracker/api/basemaps.py).
    map_preference: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (
        CheckConstraint("role IN ('admin', 'dispatcher', 'viewer')", name="ck_users_role"),
    )

    # The token of the login this object was loaded for (not a column): Flask-Login keeps
    # get_id() in the session cookie, so the cookie names one revocable StaffSession row
    # rather than the account itself.
    session_token = None

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        """Return whether the account may log in."""
        return self.active

    def get_id(self) -> str:
        """Return what the session cookie carries: the login's token, never the user id."""
        if self.session_token is None:
            raise AttributeError("this account was not loaded through a staff session")
        return self.session_token


class StaffSession(db.Model):
    """One login of a staff account; only the SHA-256 of its cookie's token is kept.

    Logout ends this row; a password change, disabling the account and an admin's
    "end all sessions" end every row of the account. Every request checks it, in every
    process, so a copied cookie stops working as soon as its row has ended.
    """

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # logout, password, disabled, ended_by_admin, ended_by_cli
    end_reason: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_staff_sessions_open", "user_id", postgresql_where=text("ended_at IS NULL")),
    )


class Alert(db.Model):
    """Something about a person that staff must see at once: an SOS, a zone left, ..."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    geom: Mapped[WKBElement | None] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False), nullable=True
    )
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (
        CheckConstraint(
            "kind IN ('sos', 'zone_exit', 'zone_enter', 'signal_lost', 'signal_back', "
            "'low_battery', 'task_undelivered')",
            name="ck_alerts_kind",
        ),
        # A phone resends an SOS until it is acknowledged; the resend must not add a row.
        UniqueConstraint("device_id", "kind", "ts", name="uq_alerts_device_kind_ts"),
        Index("ix_alerts_person_ts", "person_id", "ts"),
        Index("ix_alerts_open", "received_at", postgresql_where=text("acknowledged_at IS NULL")),
        Index("ix_alerts_geom", "geom", postgresql_using="gist"),
    )


class WatchState(db.Model):
    """What the alert rules last concluded about a person, so each change alerts once."""

    __tablename__ = "watch_states"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    zone_inside: Mapped[bool | None] = mapped_column()
    signal_lost: Mapped[bool] = mapped_column(server_default=text("false"))
    battery_low: Mapped[bool] = mapped_column(server_default=text("false"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


INCIDENT_STATUSES = ("open", "assigned", "accepted", "done", "cancelled")


class Incident(db.Model):
    """Something that happened at a point, to which dispatchers send people.

    The loop: `open` (nobody sent) → `assigned` → `accepted` → `done` (every task that was
    not cancelled or declined is done) → `handled` (处置完毕, the dispatcher's word) →
    `closed` (核查, verified). A handled or closed incident can be reopened; `cancelled`
    ends it without handling.
    """

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'open'"))
    category: Mapped[str | None] = mapped_column(String(32))
    # The creating dispatcher's unit, or the reporter's: staff see incidents of their unit
    # and the units below.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Reported from a phone (事件上报): by whom, and the phone's own id of the report, so that
    # a resent report finds the incident it already made.
    reported_by: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    report_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "status IN ('open', 'assigned', 'accepted', 'done', 'handled', 'closed', 'cancelled')",
            name="ck_incidents_status",
        ),
        UniqueConstraint("reported_by", "report_key", name="uq_incidents_reported_by_key"),
        Index("ix_incidents_created_at", "created_at"),
        Index("ix_incidents_status", "status", "created_at"),
    )


class Task(db.Model):
    """One person sent to one incident, and how far they have got.

    `sent` until a phone of the person acknowledges it (`delivered`); then `accepted` or
    `declined`, and `done`. The dispatcher may cancel it at any point before `done`. Each
    step keeps its time: the reports compute response times from them.
    """

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'sent'"))
    assigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    declined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    distance_m: Mapped[float | None] = mapped_column(REAL)
    note: Mapped[str | None] = mapped_column(Text)
    # The dispatcher has been alerted that no phone took this task in time (once).
    undelivered_alerted: Mapped[bool] = mapped_column(server_default=text("false"))

    __table_args__ = (
        CheckConstraint(
            "status IN ('sent', 'delivered', 'accepted', 'declined', 'done', 'cancelled')",
            name="ck_tasks_status",
        ),
        UniqueConstraint("incident_id", "person_id", name="uq_tasks_incident_person"),
        Index("ix_tasks_person_id", "person_id"),
        Index(
            "ix_tasks_undelivered",
            "assigned_at",
            postgresql_where=text("status = 'sent' AND NOT undelivered_alerted"),
        ),
    )


class IncidentEvent(db.Model):
    """One step in an incident's history: who did what, when, to which task, with a note."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    kind: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_incident_events_incident", "incident_id", "at"),)


class IncidentPhoto(db.Model):
    """A photo of an incident; the file is stored under its SHA-256 (see tracker.media)."""

    __tablename__ = "incident_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("incident_id", "sha256", name="uq_incident_photos_incident_sha256"),
    )


class AuditEvent(db.Model):
    """One change, read or login by staff or the CLI: who, what, when, from where, values.

    A change keeps the values before and after; a read keeps its parameters (period,
    format) in `after`. Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE
    (migration 0011), except from the retention and erasure functions (migration 0012).
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(INET)
    action: Mapped[str] = mapped_column(String(48))
    target_kind: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_target", "target_kind", "target_id", "at"),
        Index("ix_audit_events_actor", "actor_id", "at"),
    )


class DailyReport(db.Model):
    """A daily report file written by `flask reports daily`: which unit, which day, where."""

    __tablename__ = "daily_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    # The file's name inside REPORTS_DIR (never a path from outside it).
    file_name: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("unit_id", "day", name="uq_daily_reports_unit_day"),)


class ReportPersonDay(db.Model):
    """A person-day's report figures, kept with the key of everything they came from.

    The key covers the fixes (their count and newest received_at), the day's shifts, the
    assigned grid, every grid's boundary and the settings: a late fix changes it, and the
    next report computes the day again (tracker/assessment/reports.py).
    """

    __tablename__ = "report_person_days"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    inputs_key: Mapped[str] = mapped_column(String(64))
    figures: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Each grid's on-duty intervals ({"<grid id>": [[start, end], ...]}, epoch seconds).
    grid_steps: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The simplified on-duty track in pieces, for coverage.
    track: Mapped[WKBElement | None] = mapped_column(
        Geometry("MULTILINESTRING", srid=4326, spatial_index=False), nullable=True
    )
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ReportGridDay(db.Model):
    """A grid-day's coverage, kept with the key of the grid and the person-days near it."""

    __tablename__ = "report_grid_days"

    grid_id: Mapped[int] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # Part of the key: a street's report and the district's may measure a grid-day apart.
    inputs_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    coverage_ratio: Mapped[float] = mapped_column(REAL)
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
