"""Create alerts: SOS from phones now, zone and signal alerts later.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KINDS = "'sos', 'zone_exit', 'zone_enter', 'signal_lost', 'signal_back', 'low_battery'"


def upgrade():
    """Create the alerts table, deduplicated by (device, kind, ts)."""
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "person_id",
            sa.Integer(),
            sa.ForeignKey("people.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("device_id", sa.Integer(), sa.ForeignKey("devices.id", ondelete="SET NULL")),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
        sa.Column("note", sa.Text()),
        sa.Column("details", postgresql.JSONB()),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.CheckConstraint(f"kind IN ({KINDS})", name="ck_alerts_kind"),
        sa.UniqueConstraint("device_id", "kind", "ts", name="uq_alerts_device_kind_ts"),
    )
    op.create_index("ix_alerts_person_ts", "alerts", ["person_id", "ts"])
    op.create_index(
        "ix_alerts_open",
        "alerts",
        ["received_at"],
        postgresql_where=sa.text("acknowledged_at IS NULL"),
    )
    op.create_index("ix_alerts_geom", "alerts", ["geom"], postgresql_using="gist")


def downgrade():
    """Drop alerts."""
    op.drop_table("alerts")
