"""Create the postgis extension.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    """Create the postgis extension."""
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def downgrade():
    """Drop the postgis extension."""
    op.execute("DROP EXTENSION IF EXISTS postgis")
