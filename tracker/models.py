"""Tables, with typed columns."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    REAL,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    func,
    text,
)
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

    __table_args__ = (
        Index("ix_units_parent_id", "parent_id"),
        Index("ix_units_boundary", "boundary", postgresql_using="gist"),
    )


class Person(db.Model):
    """Someone who carries a tracked phone: volunteer, street chief, grid worker, patrol."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_people_unit_id", "unit_id"),)


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

    __table_args__ = (
        Index("ix_latest_positions_geom", "geom", postgresql_using="gist"),
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

    __table_args__ = (
        Index("ix_shifts_person_started", "person_id", "started_at"),
        # At most one open shift per person.
        Index(
            "ux_shifts_open",
            "person_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
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

    __table_args__ = (
        CheckConstraint("role IN ('admin', 'dispatcher', 'viewer')", name="ck_users_role"),
    )

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        """Return whether the account may log in."""
        return self.active
