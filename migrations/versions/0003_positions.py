"""Create the day-partitioned positions table and its partition function.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Partitions are made at run time by the app and the CLI; the function keeps the DDL on
# the server so that the callers pass a date as a bound parameter and never build SQL.
ENSURE_PARTITION = """
CREATE FUNCTION tracker_ensure_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := format('positions_p%s', to_char(day, 'YYYYMMDD'));
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Serialise creators across processes; the loser finds the table made.
    PERFORM pg_advisory_xact_lock(hashtext('tracker_ensure_partition'));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF positions FOR VALUES FROM (%L) TO (%L)',
        part,
        (day::timestamp AT TIME ZONE 'UTC'),
        ((day + 1)::timestamp AT TIME ZONE 'UTC')
    );
    RETURN true;
END;
$$;
"""


def upgrade():
    """Create positions, partitioned by day on ts, and tracker_ensure_partition()."""
    op.create_table(
        "positions",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("accuracy_m", sa.REAL()),
        sa.Column("altitude_m", sa.REAL()),
        sa.Column("speed_mps", sa.REAL()),
        sa.Column("heading_deg", sa.REAL()),
        sa.Column("battery", sa.REAL()),
        sa.PrimaryKeyConstraint("person_id", "ts", "device_id", name="pk_positions"),
        postgresql_partition_by="RANGE (ts)",
    )
    op.create_index("ix_positions_ts_brin", "positions", ["ts"], postgresql_using="brin")
    op.create_index("ix_positions_geom", "positions", ["geom"], postgresql_using="gist")
    op.execute(ENSURE_PARTITION)


def downgrade():
    """Drop positions with all its partitions, and the partition function."""
    op.execute("DROP FUNCTION tracker_ensure_partition(date)")
    op.drop_table("positions")
