"""Add patrol zones: assignment, grid matching, rule states, geodesic nearest-people index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    """Add people.patrol_unit_id, latest_positions.grid_id, watch_states and indexes."""
    op.add_column(
        "people",
        sa.Column("patrol_unit_id", sa.Integer(), sa.ForeignKey("units.id", ondelete="SET NULL")),
    )
    op.create_index("ix_people_patrol_unit_id", "people", ["patrol_unit_id"])
    op.add_column("latest_positions", sa.Column("grid_id", sa.Integer()))
    op.create_index(
        "ix_latest_positions_geog",
        "latest_positions",
        [sa.text("geography(geom)")],
        postgresql_using="gist",
    )
    op.create_index(
        "ux_units_parent_kind_name",
        "units",
        ["parent_id", "kind", "name"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "watch_states",
        sa.Column(
            "person_id",
            sa.Integer(),
            sa.ForeignKey("people.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("zone_inside", sa.Boolean()),
        sa.Column("signal_lost", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("battery_low", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )


def downgrade():
    """Remove patrol zones."""
    op.drop_table("watch_states")
    op.drop_index("ux_units_parent_kind_name", table_name="units")
    op.drop_index("ix_latest_positions_geog", table_name="latest_positions")
    op.drop_column("latest_positions", "grid_id")
    op.drop_index("ix_people_patrol_unit_id", table_name="people")
    op.drop_column("people", "patrol_unit_id")
