"""Create daily_reports (the files `flask reports daily` wrote) and the report caches.

report_person_days and report_grid_days keep computed figures with the key of what they
were computed from; a row whose key no longer matches is computed again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    """Create daily_reports, report_person_days and report_grid_days."""
    op.create_table(
        "daily_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "unit_id",
            sa.Integer(),
            sa.ForeignKey("units.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.UniqueConstraint("unit_id", "day", name="uq_daily_reports_unit_day"),
    )
    op.create_table(
        "report_person_days",
        sa.Column(
            "person_id",
            sa.Integer(),
            sa.ForeignKey("people.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("inputs_key", sa.String(64), nullable=False),
        sa.Column("figures", JSONB(), nullable=False),
        sa.Column("grid_steps", JSONB(), nullable=False),
        sa.Column(
            "track", Geometry("MULTILINESTRING", srid=4326, spatial_index=False), nullable=True
        ),
        sa.Column(
            "computed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_table(
        "report_grid_days",
        sa.Column(
            "grid_id",
            sa.Integer(),
            sa.ForeignKey("units.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("inputs_key", sa.String(64), nullable=False),
        sa.Column("coverage_ratio", sa.REAL(), nullable=False),
        sa.Column(
            "computed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )


def downgrade():
    """Drop the report caches and daily_reports."""
    op.drop_table("report_grid_days")
    op.drop_table("report_person_days")
    op.drop_table("daily_reports")
