"""Add tracker_drop_partition(), so retention drops whole days without SQL built in Python.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DROP_PARTITION = """
CREATE FUNCTION tracker_drop_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := format('positions_p%s', to_char(day, 'YYYYMMDD'));
BEGIN
    IF to_regclass(part) IS NULL THEN
        RETURN false;
    END IF;
    -- Detaching locks the parent briefly; give up rather than queue behind a long reader.
    SET LOCAL lock_timeout = '5s';
    EXECUTE format('ALTER TABLE positions DETACH PARTITION %I', part);
    EXECUTE format('DROP TABLE %I', part);
    RETURN true;
END;
$$;
"""


def upgrade():
    """Create tracker_drop_partition(day)."""
    op.execute(DROP_PARTITION)


def downgrade():
    """Drop tracker_drop_partition(day)."""
    op.execute("DROP FUNCTION tracker_drop_partition(date)")
