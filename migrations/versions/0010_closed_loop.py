"""Closed-loop incidents: task delivery states, phone reports with photos, honest shifts.

- tasks: `sent` → `delivered` → `accepted` / `declined` → `done`, or `cancelled`, with the
  time of each step (the reports read response times from them) and a note.
- incidents: handled (处置完毕) and closed (核查) states, a category, who reported it from
  a phone and the phone's own report id (a resend must not add a second incident).
- incident_photos: the photos of an incident, by content hash.
- incident_events: a note per step and the task it concerns.
- shifts: why a shift ended.
- devices: which client last reported (the web app can receive tasks; GPS apps cannot)
  and when its socket was last seen.
- alerts: `task_undelivered`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TASK_STATES = "('sent', 'delivered', 'accepted', 'declined', 'done', 'cancelled')"
INCIDENT_STATES = "('open', 'assigned', 'accepted', 'done', 'handled', 'closed', 'cancelled')"
ALERT_KINDS = (
    "('sos', 'zone_exit', 'zone_enter', 'signal_lost', 'signal_back', 'low_battery', "
    "'task_undelivered')"
)
OLD_ALERT_KINDS = "('sos', 'zone_exit', 'zone_enter', 'signal_lost', 'signal_back', 'low_battery')"


def _timestamp(name):
    return sa.Column(name, sa.DateTime(timezone=True))


def upgrade():
    """Add delivery states, incident closing, photos, shift end reasons and device clients."""
    op.drop_constraint("ck_tasks_status", "tasks")
    op.execute("UPDATE tasks SET status = 'sent' WHERE status = 'assigned'")
    op.alter_column("tasks", "status", server_default=sa.text("'sent'"))
    op.create_check_constraint("ck_tasks_status", "tasks", f"status IN {TASK_STATES}")
    for name in ("delivered_at", "accepted_at", "declined_at", "done_at", "cancelled_at"):
        op.add_column("tasks", _timestamp(name))
    op.add_column("tasks", sa.Column("note", sa.Text()))
    op.add_column(
        "tasks",
        sa.Column(
            "undelivered_alerted", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )
    op.create_index(
        "ix_tasks_undelivered",
        "tasks",
        ["assigned_at"],
        postgresql_where=sa.text("status = 'sent' AND NOT undelivered_alerted"),
    )

    op.drop_constraint("ck_incidents_status", "incidents")
    op.create_check_constraint("ck_incidents_status", "incidents", f"status IN {INCIDENT_STATES}")
    op.add_column("incidents", sa.Column("category", sa.String(32)))
    op.add_column(
        "incidents",
        sa.Column("reported_by", sa.Integer(), sa.ForeignKey("people.id", ondelete="SET NULL")),
    )
    op.add_column("incidents", sa.Column("report_key", sa.String(64)))
    op.add_column("incidents", _timestamp("handled_at"))
    op.add_column("incidents", _timestamp("closed_at"))
    op.create_unique_constraint(
        "uq_incidents_reported_by_key", "incidents", ["reported_by", "report_key"]
    )
    op.create_index("ix_incidents_status", "incidents", ["status", "created_at"])

    op.alter_column("incident_events", "kind", type_=sa.String(32))
    op.add_column("incident_events", sa.Column("note", sa.Text()))
    op.add_column(
        "incident_events",
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("tasks.id", ondelete="SET NULL")),
    )

    op.create_table(
        "incident_photos",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "incident_id",
            sa.Integer(),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.UniqueConstraint("incident_id", "sha256", name="uq_incident_photos_incident_sha256"),
    )

    op.add_column("shifts", sa.Column("end_reason", sa.String(32)))
    op.add_column("devices", sa.Column("client", sa.String(16)))
    op.add_column("devices", _timestamp("last_socket_at"))

    op.drop_constraint("ck_alerts_kind", "alerts")
    op.create_check_constraint("ck_alerts_kind", "alerts", f"kind IN {ALERT_KINDS}")


def downgrade():
    """Return to 0009: sent tasks become `assigned`; declined, cancelled and photos go."""
    op.execute("DELETE FROM alerts WHERE kind = 'task_undelivered'")
    op.drop_constraint("ck_alerts_kind", "alerts")
    op.create_check_constraint("ck_alerts_kind", "alerts", f"kind IN {OLD_ALERT_KINDS}")
    op.drop_column("devices", "last_socket_at")
    op.drop_column("devices", "client")
    op.drop_column("shifts", "end_reason")
    op.drop_table("incident_photos")
    op.drop_column("incident_events", "task_id")
    op.drop_column("incident_events", "note")
    op.alter_column("incident_events", "kind", type_=sa.String(16))
    op.drop_index("ix_incidents_status", "incidents")
    op.drop_constraint("uq_incidents_reported_by_key", "incidents")
    for name in ("closed_at", "handled_at", "report_key", "reported_by", "category"):
        op.drop_column("incidents", name)
    op.drop_constraint("ck_incidents_status", "incidents")
    op.execute("UPDATE incidents SET status = 'done' WHERE status IN ('handled', 'closed')")
    op.create_check_constraint(
        "ck_incidents_status",
        "incidents",
        "status IN ('open', 'assigned', 'accepted', 'done', 'cancelled')",
    )
    op.drop_index("ix_tasks_undelivered", "tasks")
    op.drop_column("tasks", "undelivered_alerted")
    op.drop_column("tasks", "note")
    for name in ("cancelled_at", "done_at", "declined_at", "accepted_at", "delivered_at"):
        op.drop_column("tasks", name)
    op.drop_constraint("ck_tasks_status", "tasks")
    op.execute("UPDATE tasks SET status = 'assigned' WHERE status IN ('sent', 'delivered')")
    op.execute("DELETE FROM tasks WHERE status IN ('declined', 'cancelled')")
    op.alter_column("tasks", "status", server_default=sa.text("'assigned'"))
    op.create_check_constraint(
        "ck_tasks_status", "tasks", "status IN ('assigned', 'accepted', 'done')"
    )
