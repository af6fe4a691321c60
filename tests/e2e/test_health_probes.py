"""/healthz and /readyz on a real server whose own PostgreSQL is stopped and started again.

The shared test cluster serves other tests, so this one runs a throwaway cluster of its
own (initdb in a temporary folder) and stops that.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.conftest import ServerProcess
from tests.e2e.staff import wait_for
from tracker import create_app, store
from tracker.auth import hash_token, new_device_token
from tracker.extensions import db

PG_BIN = Path("/usr/lib/postgresql") / sorted(
    p.name for p in Path("/usr/lib/postgresql").iterdir()
)[-1] / "bin"  # fmt: skip


class Cluster:
    """A PostgreSQL cluster in a temporary folder, on a Unix socket only."""

    def __init__(self) -> None:
        """Create the cluster (initdb), not yet started."""
        self.base = Path(tempfile.mkdtemp(prefix="tracker-readyz-"))
        self.data, self.run = self.base / "data", self.base / "run"
        self.run.mkdir()
        shutil.chown(self.base, "postgres")
        shutil.chown(self.run, "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"listen_addresses = ''\nunix_socket_directories = '{self.run}'\n")
        self.url = f"postgresql+psycopg2://postgres@/tracker?host={self.run}"

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"), "-w",
            "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server at once, closing every connection."""
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop it if running, and delete its folder."""
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(self.data),
             "-m", "immediate", "stop"],
            capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def own_database() -> Iterator[tuple[Cluster, str]]:
    """Return a migrated database on a cluster of its own, with a device's token."""
    cluster = Cluster()
    cluster.start()
    try:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "createdb"), "-h", str(cluster.run),
             "tracker"],
            check=True,
        )  # fmt: skip
        app = create_app({"SQLALCHEMY_DATABASE_URI": cluster.url, "TESTING": True})
        token = new_device_token()
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            person = store.people.add_person(db.session, "readyz", "patrol", None, None)
            store.devices.add_device(db.session, person.id, "probe", hash_token(token))
            db.session.commit()
            db.engine.dispose()
        yield cluster, token
    finally:
        cluster.remove()


def ready(server) -> requests.Response:
    """Ask /readyz."""
    return requests.get(f"{server.url}/readyz", timeout=15)


def send_fix(server, token: str) -> requests.Response:
    """Send one fix over HTTP, as a phone would (a retry answer is fine)."""
    ts = int((datetime.now(UTC) - timedelta(seconds=5)).timestamp() * 1000)
    return requests.post(
        f"{server.url}/api/v1/positions",
        json={"positions": [{"ts": ts, "lat": 39.9, "lon": 116.4}]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_readyz_follows_the_database(own_database):
    cluster, token = own_database
    server = ServerProcess(cluster.url, {"READY_STORE_STALL_S": "1", "INGEST_ACK_TIMEOUT_S": "2"})
    server.start()
    try:
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
        response = ready(server)
        assert response.status_code == 200, response.text
        assert response.json()["checks"] == {
            "database": "ok",
            "migrations": "ok",
            "writer": "ok",
            "ingest": "ok",
        }
        assert send_fix(server, token).json()["stored"] == 1  # the token is now cached

        cluster.stop()
        response = ready(server)
        assert response.status_code == 503
        assert response.json()["checks"]["database"] != "ok"
        # Fixes keep arriving and none is stored: ingest has stalled, too.
        assert send_fix(server, token).status_code == 503

        def ingest_stalled() -> bool:
            send_fix(server, token)
            return ready(server).json()["checks"]["ingest"] != "ok"

        assert wait_for(ingest_stalled, timeout=20)
        # The process itself is alive: only readiness fails.
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200

        cluster.start()

        def ready_again() -> bool:
            send_fix(server, token)
            return ready(server).status_code == 200

        assert wait_for(ready_again, timeout=30), ready(server).text
    finally:
        server.stop()


def test_readyz_fails_when_migrations_are_behind(own_database):
    cluster, _ = own_database
    app = create_app({"SQLALCHEMY_DATABASE_URI": cluster.url, "TESTING": True})
    outsider = create_app(
        {"SQLALCHEMY_DATABASE_URI": cluster.url, "TESTING": True, "METRICS_ALLOW": "10.0.0.0/8"}
    )
    with app.app_context():
        from flask_migrate import downgrade, upgrade

        downgrade(revision="-1")
        try:
            response = app.test_client().get("/readyz")
            assert response.status_code == 503
            assert "code expects" in response.get_json()["checks"]["migrations"]
            # An address outside METRICS_ALLOW learns that, not why.
            response = outsider.test_client().get("/readyz")
            assert response.status_code == 503
            assert response.get_json()["checks"]["migrations"] == "failed"
        finally:
            upgrade()
        assert app.test_client().get("/readyz").status_code == 200
        db.engine.dispose()


def test_metrics_only_for_configured_addresses(own_database):
    cluster, _ = own_database
    refused = create_app(
        {"SQLALCHEMY_DATABASE_URI": cluster.url, "TESTING": True, "METRICS_ALLOW": "10.0.0.0/8"}
    )
    assert refused.test_client().get("/metrics").status_code == 403
    allowed = create_app(
        {"SQLALCHEMY_DATABASE_URI": cluster.url, "TESTING": True, "METRICS_ALLOW": "127.0.0.0/8"}
    )
    assert allowed.test_client().get("/metrics").status_code == 200
    with pytest.raises(ValueError, match="METRICS_ALLOW: 'nowhere'"):
        create_app({"SQLALCHEMY_DATABASE_URI": cluster.url, "METRICS_ALLOW": "nowhere"})
