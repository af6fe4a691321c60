"""Create latest_positions, tuned for constant in-place updates.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    """Create latest_positions with fillfactor and autovacuum tuned (bench/latest_bloat.py)."""
    op.create_table(
        "latest_positions",
        sa.Column(
            "person_id",
            sa.Integer(),
            sa.ForeignKey("people.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("accuracy_m", sa.REAL()),
        sa.Column("altitude_m", sa.REAL()),
        sa.Column("speed_mps", sa.REAL()),
        sa.Column("heading_deg", sa.REAL()),
        sa.Column("battery", sa.REAL()),
        postgresql_with={
            "fillfactor": "50",
            "autovacuum_vacuum_scale_factor": "0",
            "autovacuum_vacuum_threshold": "5000",
            "autovacuum_vacuum_cost_delay": "0",
            "autovacuum_analyze_scale_factor": "0.05",
        },
    )
    op.create_index(
        "ix_latest_positions_geom", "latest_positions", ["geom"], postgresql_using="gist"
    )


def downgrade():
    """Drop latest_positions."""
    op.drop_table("latest_positions")
