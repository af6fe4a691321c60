"""Settings derived from the environment."""

from __future__ import annotations

from tracker.config import database_connect_args


def test_jit_is_turned_off_for_the_apps_connections():
    assert database_connect_args("postgresql+psycopg2://u@db/tracker") == {"options": "-c jit=off"}


def test_libpq_options_given_in_the_url_are_kept():
    url = "postgresql+psycopg2://u@db/tracker?options=-c%20statement_timeout%3D5000"
    assert database_connect_args(url) == {"options": "-c statement_timeout=5000 -c jit=off"}
