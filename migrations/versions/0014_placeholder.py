"""Reserved for basemaps (issue 18); does nothing yet.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    """Nothing yet."""


def downgrade():
    """Nothing yet."""
