"""Index shifts by end: each process re-reads the shifts that ended in the last day.

tracker.privacy.policy keeps a late fix (taken during a shift, arriving after it ended)
and asks for those shifts every TRACKING_POLICY_REFRESH_S; without the index that is a
scan of every shift ever worked.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    """Add ix_shifts_ended_at on the ended shifts."""
    op.create_index(
        "ix_shifts_ended_at",
        "shifts",
        ["ended_at"],
        postgresql_where="ended_at IS NOT NULL",
    )


def downgrade():
    """Drop ix_shifts_ended_at."""
    op.drop_index("ix_shifts_ended_at", table_name="shifts")
