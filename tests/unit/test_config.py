"""Settings derived from the environment."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT, SUITE_POLICY
from tracker.config import database_connect_args


def test_jit_is_turned_off_for_the_apps_connections():
    assert database_connect_args("postgresql+psycopg2://u@db/tracker") == {"options": "-c jit=off"}


def test_libpq_options_given_in_the_url_are_kept():
    url = "postgresql+psycopg2://u@db/tracker?options=-c%20statement_timeout%3D5000"
    assert database_connect_args(url) == {"options": "-c statement_timeout=5000 -c jit=off"}


def test_an_install_that_sets_nothing_keeps_only_on_duty_fixes_and_hides_off_duty_people():
    # The suite overrides both (tests/conftest.py): ask a fresh interpreter.
    env = {name: value for name, value in os.environ.items() if name not in SUITE_POLICY}
    read = "from tracker.config import Config as C; print(C.TRACKING_POLICY, C.LIVE_SHOWS_OFF_DUTY)"
    answer = subprocess.run(
        [sys.executable, "-c", read], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert answer.stdout.split() == ["on_duty", "False"]
