"""Privacy and audit: the trail's two controlled exceptions, tracking policy, legal basis.

- audit_events stays append-only for every statement the application sends. Only two
  SECURITY DEFINER functions, owned by the migrating role, may remove or rewrite rows:
  audit_prune(older_than) for the retention of the trail, and audit_pseudonymise(person_id,
  pseudonym) for a person's erasure. The trigger lets an UPDATE or DELETE through only
  when it runs as the table's owner *and* from inside one of them (the PL/pgSQL call
  stack says so); a plain UPDATE or DELETE is refused, even by the owner.
- units get a tracking policy (on duty only, within duty hours, or always) and whether
  the live map shows their off-duty people.
- people get the legal basis of their tracking (consent, ...) and when it was recorded.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    stack text;
BEGIN
    GET DIAGNOSTICS stack = PG_CONTEXT;
    IF TG_OP IN ('UPDATE', 'DELETE')
       AND current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class
                           WHERE oid = TG_RELID)
       AND (stack LIKE '%function audit_prune(timestamp with time zone)%'
            OR stack LIKE '%function audit_pseudonymise(integer,text)%') THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""

ORIGINAL_TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""

EXCEPTIONS = """
CREATE FUNCTION audit_prune(older_than timestamp with time zone) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    dropped bigint;
BEGIN
    DELETE FROM audit_events WHERE at < older_than;
    GET DIAGNOSTICS dropped = ROW_COUNT;
    RETURN dropped;
END $$;

CREATE FUNCTION audit_pseudonymise(erased_person_id integer, pseudonym text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    changed bigint;
BEGIN
    UPDATE audit_events
       SET before = CASE WHEN before ? 'name'
                         THEN before || jsonb_build_object('name', pseudonym) ELSE before END,
           after = CASE WHEN after ? 'name'
                        THEN after || jsonb_build_object('name', pseudonym) ELSE after END
     WHERE target_kind = 'person' AND target_id = erased_person_id
       AND (before ? 'name' OR after ? 'name');
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END $$;

REVOKE ALL ON FUNCTION audit_prune(timestamp with time zone) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_pseudonymise(integer, text) FROM PUBLIC;
"""


def upgrade():
    """Add the trail's controlled exceptions, unit tracking policies and legal bases."""
    op.execute(TRIGGER_FUNCTION)
    op.execute(EXCEPTIONS)
    op.add_column("units", sa.Column("tracking_policy", sa.String(16)))
    op.add_column("units", sa.Column("duty_start", sa.Time()))
    op.add_column("units", sa.Column("duty_end", sa.Time()))
    op.add_column("units", sa.Column("live_shows_off_duty", sa.Boolean()))
    op.create_check_constraint(
        "ck_units_tracking_policy",
        "units",
        "tracking_policy IN ('always', 'on_duty', 'duty_hours')",
    )
    op.create_check_constraint(
        "ck_units_duty_hours",
        "units",
        "tracking_policy IS DISTINCT FROM 'duty_hours' "
        "OR (duty_start IS NOT NULL AND duty_end IS NOT NULL)",
    )
    op.add_column("people", sa.Column("legal_basis", sa.String(32)))
    op.add_column("people", sa.Column("legal_basis_at", sa.DateTime(timezone=True)))
    op.add_column("people", sa.Column("legal_basis_note", sa.Text()))
    op.create_check_constraint(
        "ck_people_legal_basis",
        "people",
        "legal_basis IN ('consent', 'contract', 'hr_management', 'legal_duty', "
        "'emergency', 'public_interest')",
    )


def downgrade():
    """Drop legal bases, tracking policies and the trail's exceptions."""
    op.drop_constraint("ck_people_legal_basis", "people")
    op.drop_column("people", "legal_basis_note")
    op.drop_column("people", "legal_basis_at")
    op.drop_column("people", "legal_basis")
    op.drop_constraint("ck_units_duty_hours", "units")
    op.drop_constraint("ck_units_tracking_policy", "units")
    op.drop_column("units", "live_shows_off_duty")
    op.drop_column("units", "duty_end")
    op.drop_column("units", "duty_start")
    op.drop_column("units", "tracking_policy")
    op.execute("DROP FUNCTION audit_pseudonymise(integer, text)")
    op.execute("DROP FUNCTION audit_prune(timestamp with time zone)")
    op.execute(ORIGINAL_TRIGGER_FUNCTION)
