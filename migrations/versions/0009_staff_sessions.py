"""Create staff_sessions: each login is a row that logout and admins can end.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    """Create staff_sessions."""
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("end_reason", sa.String(32)),
    )
    op.create_index(
        "ix_staff_sessions_open",
        "staff_sessions",
        ["user_id"],
        postgresql_where=sa.text("ended_at IS NULL"),
    )


def downgrade():
    """Drop staff_sessions."""
    op.drop_index("ix_staff_sessions_open", table_name="staff_sessions")
    op.drop_table("staff_sessions")
