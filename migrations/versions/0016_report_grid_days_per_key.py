"""Keep a grid-day's coverage once per key: the street's and the district's side by side.

A grid-day's coverage counts the tracks of the report unit's people, so a street's report
and the district's can measure the same grid on the same day differently (people of the
next street walking past). With one row per grid and day each overwrote the other, and the
district's report computed again every grid on a street's edge that the nightly run had
just kept. The key is now part of the primary key; old keys go with RETENTION_DAYS.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    """Make (grid_id, day, inputs_key) the primary key of report_grid_days."""
    op.drop_constraint("report_grid_days_pkey", "report_grid_days", type_="primary")
    op.create_primary_key(
        "report_grid_days_pkey", "report_grid_days", ["grid_id", "day", "inputs_key"]
    )


def downgrade():
    """Keep the newest row of each grid-day and make (grid_id, day) the primary key again."""
    op.execute(
        "DELETE FROM report_grid_days AS old USING report_grid_days AS newer"
        " WHERE old.grid_id = newer.grid_id AND old.day = newer.day"
        " AND (old.computed_at, old.inputs_key) < (newer.computed_at, newer.inputs_key)"
    )
    op.drop_constraint("report_grid_days_pkey", "report_grid_days", type_="primary")
    op.create_primary_key("report_grid_days_pkey", "report_grid_days", ["grid_id", "day"])
