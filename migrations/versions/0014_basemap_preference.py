"""Add users.map_preference: the basemap and layer opacities a staff account chose.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    """Add users.map_preference (NULL: the default basemap, layers fully opaque)."""
    op.add_column("users", sa.Column("map_preference", postgresql.JSONB(), nullable=True))


def downgrade():
    """Drop users.map_preference."""
    op.drop_column("users", "map_preference")
