"""Fixtures: a throwaway PostGIS database, the app, a real server process, people and staff."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tracker import create_app, store
from tracker.auth import hash_password, hash_token, new_device_token
from tracker.config import Config
from tracker.extensions import db

ROOT = Path(__file__).resolve().parent.parent
GPX_DIR = ROOT / "var" / "testdata" / "gpx"

# Most tests send fixes without going on duty and look for them on the map: they are about
# ingest, durability, the map or reports, not the tracking policy. So the suite runs with
# the policy that keeps every fix and shows everyone: the apps made here (Config) and every
# process started from here (the servers, `flask simulate`) inherit it. The tests of the
# policy itself start their servers with `product_policy=True`, which restores the
# product's defaults (on_duty; off-duty people hidden).
SUITE_POLICY = {"TRACKING_POLICY": "always", "LIVE_SHOWS_OFF_DUTY": "1"}
os.environ.update(SUITE_POLICY)
Config.TRACKING_POLICY = "always"
Config.LIVE_SHOWS_OFF_DUTY = True


def _admin_url(url: str) -> str:
    """Return the URL of the maintenance database on the same server."""
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def create_database(base_url: str, name: str) -> str:
    """Create an empty database next to base_url's and return its URL."""
    engine = create_engine(_admin_url(base_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_database(base_url: str, name: str) -> None:
    """Drop a database created by create_database(), closing its connections."""
    engine = create_engine(_admin_url(base_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def base_url() -> str:
    """Return the URL of the server the tests may create databases on."""
    return os.environ.get("DATABASE_URL") or Config.SQLALCHEMY_DATABASE_URI


@pytest.fixture(scope="session")
def database_url(base_url: str) -> Iterator[str]:
    """Create a migrated throwaway database for the whole test session."""
    name = f"tracker_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = create_database(base_url, name)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    with app.app_context():
        db.engine.dispose()
    yield url
    drop_database(base_url, name)


@pytest.fixture(scope="session")
def app(database_url: str):
    """Return an app bound to the throwaway database."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture()
def client(app):
    """Return a Flask test client."""
    return app.test_client()


@pytest.fixture()
def runner(app):
    """Return a Flask CLI runner."""
    return app.test_cli_runner()


@pytest.fixture()
def session(app) -> Iterator[Session]:
    """Return a session whose work is rolled back after the test."""
    with app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        sess = Session(bind=connection, join_transaction_mode="create_savepoint")
        yield sess
        sess.close()
        transaction.rollback()
        connection.close()


@dataclass
class Phone:
    """A person with one device, as the tests create them."""

    person_id: int
    device_id: int
    token: str
    unit_id: int | None


@pytest.fixture()
def make_phone(app) -> Callable[..., Phone]:
    """Return a function that commits a new person with a device and returns its token."""

    def make(role: str = "volunteer", unit_id: int | None = None, name: str = "") -> Phone:
        with app.app_context():
            person = store.people.add_person(
                db.session, name or f"p-{uuid.uuid4().hex[:8]}", role, unit_id, None
            )
            token = new_device_token()
            device = store.devices.add_device(db.session, person.id, "test", hash_token(token))
            db.session.commit()
            return Phone(person.id, device.id, token, unit_id)

    return make


@pytest.fixture()
def make_unit(app) -> Callable[..., int]:
    """Return a function that commits a unit and returns its id."""

    def make(name: str = "", kind: str = "grid", parent_id: int | None = None) -> int:
        with app.app_context():
            unit = store.people.add_unit(
                db.session, name or f"u-{uuid.uuid4().hex[:6]}", kind, parent_id, None
            )
            db.session.commit()
            return unit.id

    return make


@pytest.fixture()
def make_user(app) -> Callable[..., tuple[str, str]]:
    """Return a function that commits a staff account and returns (username, password)."""

    def make(role: str = "admin", unit_id: int | None = None) -> tuple[str, str]:
        username = f"u{uuid.uuid4().hex[:10]}"
        password = uuid.uuid4().hex
        with app.app_context():
            store.accounts.add_user(db.session, username, hash_password(password), role, unit_id)
            db.session.commit()
        return username, password

    return make


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """The real gunicorn + gevent server, run as a child process."""

    def __init__(
        self,
        database_url: str,
        extra_env: dict[str, str] | None = None,
        product_policy: bool = False,
    ) -> None:
        """Prepare a server on a free port; start() runs it.

        `product_policy` drops the suite's SUITE_POLICY: the server runs with the tracking
        policy's own defaults, as an install that sets nothing.
        """
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BIND": f"127.0.0.1:{self.port}",
            # A server stopped at the end of its tests still has a browser's websocket or
            # a client's idle keep-alive connection open: don't wait 10 s for each.
            "GRACEFUL_TIMEOUT_S": "3",
            **(extra_env or {}),
        }
        if product_policy:
            for name in SUITE_POLICY:
                self.env.pop(name, None)
        self.proc: subprocess.Popen | None = None
        self.log_path = ROOT / "var" / f"test-server-{self.port}.log"

    def start(self) -> None:
        """Start the server and wait until it answers HTTP."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited; see {self.log_path}")
            try:
                requests.get(f"{self.url}/api/v1/session", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start; see {self.log_path}")

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """Stop the server gracefully."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        """Return what the server printed."""
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[ServerProcess]:
    """Run one real server process for the e2e tests that share it."""
    proc = ServerProcess(database_url)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def product_policy_server(database_url: str) -> Iterator[ServerProcess]:
    """Run one real server with the tracking policy's defaults (nothing set)."""
    proc = ServerProcess(database_url, product_policy=True)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture()
def sql(database_url: str) -> Iterator[Any]:
    """Return a function running one SELECT on the test database and returning its rows."""
    engine = create_engine(database_url)

    def run(query: str, **params: Any) -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(text(query), params).all())

    yield run
    engine.dispose()


@pytest.fixture()
def gpx_dir() -> Path:
    """Return the folder of real GPX traces fetched by tests/data/fetch_traces.py."""
    if not (GPX_DIR / "around-visnjan-with-car.gpx").exists():
        subprocess.run([sys.executable, str(ROOT / "tests/data/fetch_traces.py")], check=True)
    return GPX_DIR
