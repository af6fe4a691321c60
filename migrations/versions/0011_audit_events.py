"""Create audit_events: every change made by staff or the CLI, with before and after.

The audit issue adds reads (who looked at whom) to the same table. Rows are only ever
added: a trigger refuses UPDATE and DELETE, whatever the application does.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import INET, JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    """Create audit_events and the trigger that keeps it append-only."""
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        # The staff account, or NULL with actor_name 'cli:<os user>' for the terminal.
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("actor_name", sa.String(64), nullable=False),
        sa.Column("address", INET()),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("target_id", sa.Integer()),
        sa.Column("before", JSONB()),
        sa.Column("after", JSONB()),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_target", "audit_events", ["target_kind", "target_id", "at"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor_id", "at"])
    op.execute(
        """
        CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        CREATE TRIGGER audit_events_append_only
            BEFORE UPDATE OR DELETE ON audit_events
            FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
        CREATE TRIGGER audit_events_no_truncate
            BEFORE TRUNCATE ON audit_events
            FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
        """
    )


def downgrade():
    """Drop audit_events and its trigger function."""
    op.drop_table("audit_events")
    op.execute("DROP FUNCTION audit_events_append_only()")
