"""Migrations: upgrade, downgrade and upgrade again on an empty database; models match."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from tests.conftest import create_database, drop_database
from tracker import create_app
from tracker.extensions import db


@pytest.fixture()
def empty_app(base_url):
    """Return an app bound to a new, empty database, dropped afterwards."""
    name = f"tracker_mig_{uuid.uuid4().hex[:8]}"
    url = create_database(base_url, name)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    yield app
    with app.app_context():
        db.engine.dispose()
    drop_database(base_url, name)


def tables(app) -> set[str]:
    """Return the table names in the public schema."""
    with app.app_context():
        return set(inspect(db.engine).get_table_names())


def test_upgrade_downgrade_upgrade(empty_app):
    expected = {"units", "people", "devices", "positions", "latest_positions", "shifts", "users"}
    with empty_app.app_context():
        upgrade()
    assert expected <= tables(empty_app)
    with empty_app.app_context():
        downgrade(revision="base")
    assert not expected & tables(empty_app)
    with empty_app.app_context():
        with db.engine.connect() as conn:
            assert (
                conn.execute(
                    text("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")
                ).scalar()
                == 0
            )
        upgrade()
    assert expected <= tables(empty_app)


def test_models_match_migrations(empty_app):
    """Autogenerate finds nothing to do: the migrations build exactly the models' schema."""
    with empty_app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={"include_object": _include_object, "compare_type": True},
            )
            diff = compare_metadata(ctx, db.metadata)
    assert diff == []


def _include_object(obj, name, obj_type, reflected, compare_to):
    """Skip PostGIS's own tables and run-time partitions, as migrations/env.py does."""
    from geoalchemy2 import alembic_helpers

    if obj_type == "table" and (
        name == "spatial_ref_sys" or (name or "").startswith("positions_p")
    ):
        return False
    return alembic_helpers.include_object(obj, name, obj_type, reflected, compare_to)


def test_partition_function_creates_each_day_once(empty_app):
    from datetime import date

    from tracker import store

    with empty_app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            assert store.positions.ensure_partition(conn, date(2026, 1, 31)) is True
            assert store.positions.ensure_partition(conn, date(2026, 1, 31)) is False
            assert date(2026, 1, 31) in store.positions.partition_days(conn)
            bounds = conn.execute(
                text(
                    "SELECT pg_get_expr(relpartbound, oid) FROM pg_class "
                    "WHERE relname = 'positions_p20260131'"
                )
            ).scalar()
    assert "2026-01-31 00:00:00+00" in bounds and "2026-02-01 00:00:00+00" in bounds
