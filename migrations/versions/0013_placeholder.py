"""Reserved for patrol reports and assessment (issue 16); does nothing yet.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    """Nothing yet."""


def downgrade():
    """Nothing yet."""
